"""Tiny random causal language models with a real (trained) tokenizer, for tests of prompted classifiers."""

from __future__ import annotations

import os
from pathlib import Path

CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                 "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
CORPUS = ["This movie was positive and negative at once.", "A positive review of a great film.",
          "A negative review of a bad film.", "Sentiment: positive", "Sentiment: negative",
          "Review: the acting was wonderful, the plot was dull. Answer: positive"]
MODELS = Path(os.environ.get("IMDB_SENTIMENT_MODELS", Path.home() / ".cache" / "imdb-sentiment" / "models"))
SMOLLM2 = MODELS / "smollm2-135m-instruct"
"""SmolLM2-135M-Instruct as a Q4_1 GGUF (``../shared/models/fetch.sh smollm2-135m-instruct``)."""
BARE_WORDS = ["positive\nnegative\npositive"]
"""Lines that start with the label words, so they are also tokens without a leading space."""
REVIEWS = ["A great film.", "A bad film, dull and far too long.", "Wonderful acting.", "Negative.",
           "The plot was dull but the acting was great, a positive review."]


def build_tokenizer(*, bare_words: bool = False, chat: bool = True):
    """A small byte-level BPE tokenizer (as GPT-2, Qwen, Llama 3 use) trained on a few lines."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator((CORPUS + (BARE_WORDS if bare_words else [])) * 20, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|endoftext|>",
                                        pad_token="<|endoftext|>")
    if chat:
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_llm(folder: Path, *, architecture: str = "qwen2") -> Path:
    """A 2-layer random decoder with a real (trained) tokenizer, saved as a model folder: Qwen2
    (rotary positions, ``Qwen2ForCausalLM``) or GPT-2 (learned absolute positions, ``GPT2LMHeadModel``)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, Qwen2Config, Qwen2ForCausalLM

    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    if architecture == "qwen2":
        config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                             max_position_embeddings=1024, initializer_range=0.5,  # large weights: varied
                             tie_word_embeddings=False)
        model = Qwen2ForCausalLM(config)
    else:
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=2,
                                           n_positions=1024, initializer_range=0.5))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
