"""The measured claims of the README: Part One (the linear AE and PCA), Part Three (augmentation),
the speed and learning studies beside PyTorch, and the measurements they share. Built on lab/."""
