"""The sections of ``python -m bench.run``'s report, one module each.

==================  ===================================================================
module              what it holds
==================  ===================================================================
``peers``           the models and methods compared, which exist here, how each was made
``segmenters``      the peers as functions ``image -> labels``: classical, StarDist
``quality``         every method scored on each data set's test split, paired leads
``speed``           inference, end to end, large image, folder and training speed
``flops``           FLOPs per image, the machine's matmul peak, the share achieved
``targets``         the targets, each with its measured value and pass / fail
``report``          ``RESULTS.md``, one short renderer per section
``report_speed``    the Speed section of ``RESULTS.md``
==================  ===================================================================
"""
