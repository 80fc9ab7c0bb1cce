"""RLA Explorer: the Gradio app over the ``rla`` library (``python app.py``)."""
