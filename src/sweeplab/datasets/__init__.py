"""Custom Kedro datasets; each writes atomically (a temporary file, then a rename).

- ``hdf5.H5ArraysDataset``: HDF5 files of arrays, loaded lazily, saved by streaming;
- ``torch_weights.TorchWeightsDataset``: state dicts, loaded with ``weights_only=True``;
- ``checkpoints.CheckpointStoreDataset``: where the training loop keeps its checkpoints.

Nothing is imported here, so reading HDF5 does not pull in torch.
"""
