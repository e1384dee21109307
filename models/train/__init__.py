"""fleetinfer model zoo training (Fashion-MNIST, PyTorch 1.13).

Run from the repository root:  /usr/bin/python3 -m models.train.zoo --out models/zoo
"""
