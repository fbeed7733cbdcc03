"""Every figure swin draws, with Pillow alone (no matplotlib at run time): training curves, the confusion
matrix, ``swin profile --plot`` charts, and the font and text placement they share."""
