"""Track-file readers behind ``geodata.trackfile.read_track``: one module per format, the shared
fix accumulator (``sink``), bulk time parsing (``times``) and the safe XML set-up (``xmlsafe``)."""
