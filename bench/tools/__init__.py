"""What the benchmark's experiments share, and the tool that rebuilds the sample images.

==================  ===================================================================
module              what it holds
==================  ===================================================================
``paths``           the folders the benchmark reads and writes and how it names them
``markdown``        figures, tables and sections of the markdown results
``progress``        the progress log and the guard that keeps one failing row local
``machine``         the machine and its load while an experiment runs
``make_samples``    ``python -m bench.tools.make_samples``: rebuilds ``sample_images/``
==================  ===================================================================
"""
