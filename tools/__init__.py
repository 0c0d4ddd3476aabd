"""The course's maintenance tools, run from the checkout as `python -m tools.<name>` (not installed with the course).

editions (student editions), colab (Colab cells and badges), course_numbers (times and results in the documents),
section_times, pack (offline packs), gpu_check (the GPU check), notebook_run and airbench (its parts), lab_browser
and screenshot_interactives (JupyterLab in headless Chromium), files (small shared helpers: writes, time format).
"""
