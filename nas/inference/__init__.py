"""A trained model in use: predictions on image files and a self-contained ONNX export."""
