"""Cell instances of a volume: painted key slices and the model's cell interior into the "cells_auto" layer."""
