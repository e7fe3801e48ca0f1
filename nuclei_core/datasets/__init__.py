"""Datasets: folders of images with their nuclei (Kaggle or flat layout), the fixed hash split,
and the user datasets a person corrects in the app for fine-tuning."""
