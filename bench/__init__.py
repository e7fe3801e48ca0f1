"""The benchmark: quality and speed of the nuclei engine and its peers, measured in one run.

``python bench/run.py`` is the command line (see ``bench/README.md``). One module per
report section:

================  ====================================================================
module            what it holds
================  ====================================================================
``run``           the command line: parse, run the sections, write the report files
``machine``       the machine and its load while the benchmark runs
``peers``         the models and methods compared, which exist here, how each was made
``quality``       every method scored on each data set's test split, paired leads
``speed``         inference, end to end, large image, training speed, FLOP/s
``targets``       the issues' targets, each with its measured value and pass / fail
``report``        ``RESULTS.md``, one short renderer per section
``report_speed``  the Speed section of ``RESULTS.md``
``markdown``      the pieces of ``RESULTS.md``: figures and tables
``paths``         the folders the benchmark reads and how it names them
``progress``      the progress log and the guard that keeps one failing row local
================  ====================================================================
"""
