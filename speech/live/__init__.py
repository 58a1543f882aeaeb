"""Speaking text while it is still arriving: ``speech.SpeechResponse`` over a string or a stream of fragments.

``text`` (the incremental sentence splitter) needs no Django; ``response`` is the Django response.
"""
