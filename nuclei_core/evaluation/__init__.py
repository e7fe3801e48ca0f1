"""How good a segmentation is: metrics over label images, scoring a dataset split or a folder."""
