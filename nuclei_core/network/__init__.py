"""The network: its architecture and loss, the number format it runs in, the inference
runtimes (TensorFlow or OpenVINO) and running it on images of any size."""
