/// Namespace of the synthetic data generator's internals (``DataGenerator`` is
/// the public entry point).
enum Synth {}
