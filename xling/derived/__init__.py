"""Training data that a model writes: translations of problems into other languages (`translate`) and
the pivot model's English reference answers (`pivot`), both cached per problem and resumable.

In: training problems (`xling.data`) and a model (`xling.generate`). Out: translated problems and
reference answers that `xling.data.trainset` reads into training sets.
"""
