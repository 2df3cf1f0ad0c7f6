"""Custom Kedro datasets. Each writes atomically: a temporary file, then a rename."""

from sweeplab.datasets.checkpoints import CheckpointStoreDataset
from sweeplab.datasets.hdf5 import ArrayStream, H5ArraysDataset, H5File
from sweeplab.datasets.torch_weights import TorchWeightsDataset

__all__ = ["ArrayStream", "CheckpointStoreDataset", "H5ArraysDataset", "H5File", "TorchWeightsDataset"]
