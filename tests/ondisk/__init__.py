"""Writers of tiny dataset files in the exact on-disk formats of the real datasets.

Each module here defines ``WRITERS = {"<data config name>": write}`` where ``write(root: Path)``
creates the files the data module reads from ``data_dir=root``. ``tests/conftest.py`` collects them,
so the model x data pair tests can run every dataset offline through its real loading code.
"""
