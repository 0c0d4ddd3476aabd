"""The course's maintenance tools, run from the checkout as `python -m tools.<name>` (not installed with the course).

- student editions and Colab: editions, colab;
- the course's numbers: course_numbers (fill, check, measure), notebook_times and section_times (its measuring);
- offline packs for rooms and GPU nodes: pack (build, command line), pack_install (verify, install);
- the GPU check: gpu_check, with notebook_run (a notebook cell by cell) and airbench (the reference run);
- the browser checks: lab_browser (interactives), lab_server (JupyterLab), chromium, screenshot_interactives,
  check_site (the website);
- files: what several tools share (whole-file writes, the time format).
"""
