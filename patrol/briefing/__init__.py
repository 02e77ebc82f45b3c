"""The monthly briefing (工作简报) of a side, town or station: data → figures → HTML → PDF.

- ``collect``: a :class:`~patrol.briefing.collect.Briefing` for a scope and a China-time month,
  assembled from the analysis functions (``patrol.analysis``) under the caller's visibility, with
  the previous month's totals for the month-on-month comparison;
- ``figures``: the static map and the charts, drawn on the server with matplotlib (PNG bytes);
- ``render``: the HTML page (jinja2, ``templates/briefing.html``) and the PDF (WeasyPrint).

``figures`` and ``render`` take a ``Briefing`` and nothing else: they never touch the database, so
they are tested with hand-made briefings. Nothing is fetched from the network: images are data
URIs, the font is the locally installed WenQuanYi Zen Hei.
"""
