"""XML documents: typed models, parsing and formatting, Relax-NG schemas.

One module per kind of document, each with its frozen dataclass models and,
below them, its ``parse_*``/``format_*`` pair:

- :mod:`virtkit.xml.domain`: ``parse_domain``/``format_domain`` and, for
  hot-plug, ``parse_device``/``format_device``;
- :mod:`virtkit.xml.network`: ``parse_network``/``format_network``;
- :mod:`virtkit.xml.capabilities`: ``parse_capabilities``/``format_capabilities``;
- :mod:`virtkit.xml.node`: ``parse_node``/``format_node`` (libvirt's test-driver node files);
- :mod:`virtkit.xml.schema`: the shipped Relax-NG schemas, compiled once, and ``validate``.

Every ``parse_*`` reads with a safe parser (no network, no entity expansion,
no DTD) and validates against the schema of its kind before building the
model; every ``format_*`` writes one canonical layout (libvirt's: fixed
element and attribute order, two-space indentation, single quotes) that
parses back to an equal model.
"""
