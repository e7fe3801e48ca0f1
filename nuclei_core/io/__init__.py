"""Files in and out: reading images, their channels, pixel size and ground truth, uploads;
writing masks, label images, tables, ROIs and GeoJSON; outlines and pictures for the app."""
