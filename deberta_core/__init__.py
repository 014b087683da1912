"""Framework-neutral pieces of deberta-dual: configs, weight names, relative positions, losses, I/O."""

from .config import BaseDebertaConfig, DebertaConfig, DebertaV2Config, load_config
from .tokenization import DebertaTokenizer, DebertaTokenizerFast, DebertaV2Tokenizer, DebertaV2TokenizerFast
