"""Many images at once: a folder run in the app, a collection of files on disk (resumable,
in shards), and the Dask engine for many workers."""
