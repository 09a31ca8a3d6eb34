"""Input search: hypothesis, used as a library, hunting for the inputs on which two backends
disagree most (`checks/input_search.py` is the check that runs it).

`space`: what may be generated, from the data's feature schema (and the split thresholds that
`trees` reads from tree models); `engine`: the guided search, its budget, and the shrinking of
a failing input to the fewest features moved from a typical row."""
