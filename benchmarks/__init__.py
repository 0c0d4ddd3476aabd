"""GPU speed and accuracy runs of the notebooks' training code: python -m benchmarks.cifar10_speed, ...imdb_finetune."""
