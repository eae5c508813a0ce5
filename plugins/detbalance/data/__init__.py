"""Per-annotation data read by both adapters (framework-free): the box weights of :mod:`.box_weights`."""
