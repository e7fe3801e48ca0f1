"""The benchmark: experiments on the nuclei engine and its peers, their results, and tools.

Run every experiment from the project root as ``python -m bench.<name>`` (see
``bench/README.md``); each writes its figures (``.json``) and tables (``.md``) into
``bench/results/`` unless ``--out-dir`` says otherwise.

=====================  ==============================================================
experiment             what it measures
=====================  ==============================================================
``run``                quality and speed of every method in one run: ``RESULTS.md``
``confidence``         a model's minimum nucleus confidence, chosen on validation images
``diameter``           whether the nucleus diameter estimate helps unusual magnifications
``width``              what a wider U-Net costs in inference and training speed
``slides``             peak memory and seconds per megapixel of whole slides
``cluster``            images/s of batch prediction alone and on a Dask LocalCluster
``finetune``           what k corrected images and M minutes of fine-tuning buy
``stardist_peer``      StarDist 2D, trained here as a peer, and run for ``run``
``train_peers``        retrains every learned peer with the default model's data and runs
``probe_large``        time and memory of one large image in a fresh process (for ``run``)
``probe_onnx``         images/s of ONNX Runtime against OpenVINO
=====================  ==============================================================

The folders:

- ``results/``: what the experiments wrote, committed (``RESULTS.md``, ``results.json``,
  ``width.md`` ...);
- ``sections/``: the sections of ``run``'s report (peers, quality, speed, targets, report);
- ``tools/``: what the experiments share (paths, markdown, progress, the machine) and
  ``make_samples``, which rebuilds ``sample_images/``;
- ``work/``: scratch space, not committed.
"""
