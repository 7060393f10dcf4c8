"""Readers of frames and files, the chunk writer, the manifest and resume."""
