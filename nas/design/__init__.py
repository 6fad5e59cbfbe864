"""A design and what it measures: the config dataclasses and their files, the model built from
them, the geometry (shapes, receptive field, parameter count) and the rules' verdict."""
