"""Pure maths of the scoring half, arrays in and numbers out: Frechet distance and FAD-inf (frechet), kernel audio
distance (kernel), FAD and KAD with a bootstrap over clips (sets), vocal-accompaniment adherence and APA (adherence),
signal metrics (signal), and the audiobox-aesthetics scorer (aesthetics, the one with weights). Which of them the
score pass runs, and what each number means, is declared in bench.scoring.registry."""
