"""From an image to nuclei: intensities for the network, probabilities to a label image, the
nucleus size, classical baselines, measurements, and correcting a label image by hand."""
