"""Resuming a model with tied output weights: transformers' "missing keys" warning is left out for the
tied weights only (they are tied again), and kept for any other missing weight."""

from types import SimpleNamespace


def test_resuming_a_tied_model_warns_only_about_weights_really_missing(monkeypatch):
    import transformers.trainer
    from transformers import LlamaConfig, LlamaForCausalLM, Trainer

    from xling.train.callbacks import quiet_trainer

    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=1, num_key_value_heads=1, tie_word_embeddings=True))
    saved = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}  # as a checkpoint holds it
    loaded = model.load_state_dict(saved, strict=False)
    assert loaded.missing_keys == ["lm_head.weight"]
    trainer = SimpleNamespace(model=model, remove_callback=lambda cb: None)
    trainer._issue_warnings_after_load = lambda result: Trainer._issue_warnings_after_load(trainer, result)
    warned: list[str] = []  # what transformers' trainer logs as warnings
    monkeypatch.setattr(transformers.trainer.logger, "warning", lambda msg, *a, **k: warned.append(str(msg)))
    trainer._issue_warnings_after_load(loaded)
    assert warned == ["There were missing keys in the checkpoint model loaded: ['lm_head.weight']."]  # unquieted
    quiet_trainer(trainer)
    trainer._issue_warnings_after_load(loaded)
    assert len(warned) == 1
    assert model.lm_head.weight is model.model.embed_tokens.weight
    trainer._issue_warnings_after_load(loaded._replace(missing_keys=["lm_head.weight", "model.norm.weight"]))
    assert warned[1:] == ["There were missing keys in the checkpoint model loaded: ['model.norm.weight']."]
