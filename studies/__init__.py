"""The measured claims of the README, built on lab/: Part One (the linear AE and PCA), Part Three
(augmentation), the benchmark (speed) and the quality study (learning) beside PyTorch, the
measurements and figures they share, and the worker processes they are measured in."""
