"""Pure maths of the scoring half: Frechet distance and FAD-inf (frechet), kernel audio distance (kernel)."""
