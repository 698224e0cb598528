"""XML documents: typed models, parsing and formatting, Relax-NG schemas."""
