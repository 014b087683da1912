"""DeBERTa-v3 pre-training: the replaced-token-detection discriminator and the generator + discriminator pair.

Legend: B batch, T length, C hidden size, V vocabulary.

`DebertaV2ForReplacedTokenDetection` is the discriminator: the encoder and the original's
`mask_predictions` head, so a released v3 checkpoint (which carries that head) loads whole.
`DebertaV2ForRTDPretraining` holds a generator (`DebertaV2ForMaskedLM`, normally a smaller config with
`use_emd=True, legacy=False`, the original's layout) and a discriminator, and computes one step of the
joint objective. Every rule it follows (sampling, labels, losses, embedding sharing) is stated and
defined in numpy in deberta_core.pretraining; state-dict keys are the original RTDModel's
(`generator.*`, `discriminator.*`, the GDES delta `discriminator.deberta.embeddings.word_embeddings._weight`).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from deberta_core import pretraining as rules
from deberta_core.config import DebertaV2Config
from deberta_core.losses import IGNORE_INDEX
from deberta_core.outputs import ReplacedTokenDetectionOutput, RTDPretrainingOutput, resolve_output_flags

from .backbone import DebertaV2Model, build_masks
from .heads import DebertaV2ForMaskedLM, _TaskModel
from .layers import LayerNorm, get_activation
from .pretrained import DebertaV2PreTrainedModel



class MaskPredictionHead(nn.Module):
    """`mask_predictions` (the original's LMMaskPredictionHead): one "replaced" logit per token.

    logits = classifier(act(dense(LayerNorm(h + h[:, 0])))): each token's state plus the [CLS] state,
    normalised, then dense (C -> C), the hidden activation and classifier (C -> 1). (B, T, C) -> (B, T).
    """

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform_act_fn = get_activation(config.hidden_act)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.classifier = nn.Linear(config.hidden_size, 1)

    def forward(self, hidden_states):
        states = self.LayerNorm(hidden_states[:, :1] + hidden_states)
        return self.classifier(self.transform_act_fn(self.dense(states))).squeeze(-1)


def _token_mask(attention_mask, shape):
    return None if attention_mask is None else build_masks(attention_mask, shape)[0]


def replaced_token_loss(logits, labels, attention_mask=None):
    """Sigmoid cross-entropy of logits (B, T) against 0/1 labels (B, T), averaged over the tokens with
    attention_mask != 0 whose label is not negative (deberta_core.pretraining.rtd_loss); 0 if none."""
    keep = labels >= 0
    token_mask = _token_mask(attention_mask, logits.shape)
    if token_mask is not None:
        keep = keep & token_mask
    per_token = F.binary_cross_entropy_with_logits(logits.float(), labels.float().clamp(min=0), reduction="none")
    return (per_token * keep).sum() / keep.sum().clamp(min=1)


def masked_lm_loss(logits, labels):
    """Cross-entropy over the targets (labels != -100), averaged; 0 when there are none
    (deberta_core.pretraining.mlm_loss)."""
    flat = labels.reshape(-1)
    keep = flat != IGNORE_INDEX
    per_token = F.cross_entropy(logits.reshape(flat.shape[0], -1).float(), flat.clamp(min=0), reduction="none")
    return (per_token * keep).sum() / keep.sum().clamp(min=1)


def sample_tokens(logits, temperature: float = rules.SAMPLING_TEMPERATURE, uniform=None):
    """One token per row of logits (..., V) from softmax(logits / temperature), by the Gumbel-max trick
    on uniform noise of the same shape (deberta_core.pretraining.sample_tokens), or without noise by
    the inverse CDF (deberta_core.pretraining.sample_by_cdf). Returns int64 (...)."""
    logits = logits.detach().float()
    if uniform is None:  # the same distribution by its inverse CDF: one uniform per row, not per logit
        cdf = torch.softmax(logits / temperature, dim=-1).cumsum(-1)
        u = torch.rand(cdf.shape[:-1] + (1,), device=cdf.device) * cdf[..., -1:]
        return (cdf <= u).sum(-1).clamp(max=cdf.shape[-1] - 1)
    u = torch.as_tensor(uniform, dtype=torch.float32, device=logits.device)
    u = u.clamp(torch.finfo(torch.float32).tiny, 1.0 - torch.finfo(torch.float32).eps / 2)  # (0, 1), as numpy's
    return torch.argmax(logits / temperature - torch.log(-torch.log(u)), dim=-1)


class DebertaV2ForReplacedTokenDetection(_TaskModel, DebertaV2PreTrainedModel):
    """The DeBERTa-v3 discriminator: encoder + `mask_predictions`, logits (B, T)."""

    head = "replaced_token_detection"
    backbone_class = DebertaV2Model

    def __init__(self, config):
        super().__init__(config)
        self.mask_predictions = MaskPredictionHead(config)
        self._init_head()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        """logits (B, T), > 0 meaning "replaced". labels (B, T): 1 replaced, 0 original, negative
        ignored; the loss averages over the tokens the attention mask keeps ([CLS]/[SEP] included)."""
        out = self._encode(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                           position_ids=position_ids, inputs_embeds=inputs_embeds,
                           output_attentions=output_attentions, output_hidden_states=output_hidden_states)
        logits = self.mask_predictions(out.last_hidden_state)
        loss = replaced_token_loss(logits, labels, attention_mask) if labels is not None else None
        result = ReplacedTokenDetectionOutput(loss, logits, out.hidden_states, out.attentions)
        return self._package_output(result, return_dict)


class DisentangledEmbedding(nn.Module):
    """A GDES table: weight = stop_gradient(source.weight) + `_weight`, the delta starting at zero.

    `source` is the generator's nn.Embedding; it is referenced, not registered, so its weight is saved
    once, under the generator. Lookups keep the source's padding_idx (no gradient to that row)."""

    def __init__(self, source: nn.Embedding):
        super().__init__()
        object.__setattr__(self, "source", source)
        self._weight = nn.Parameter(torch.zeros_like(source.weight))
        self.padding_idx = source.padding_idx
        self.num_embeddings, self.embedding_dim = source.weight.shape

    @property
    def weight(self) -> torch.Tensor:
        return self.source.weight.detach() + self._weight

    def forward(self, ids):
        return F.embedding(ids, self.weight, self.padding_idx)


class DebertaV2ForRTDPretraining(nn.Module):
    """A generator (masked LM) and a discriminator (replaced-token detection) trained together.

    generator_config / discriminator_config: DebertaV2Config each (one vocabulary; one embedding width
    unless embedding_sharing="none"). embedding_sharing: "none", "es" (the discriminator embeds with the
    generator's tables) or "gdes" (stop_gradient(generator table) + a zero-initialised delta); the word
    table is shared, and the absolute position table too where both models have one. rtd_lambda and
    temperature: see deberta_core.pretraining.
    """

    def __init__(self, generator_config: DebertaV2Config, discriminator_config: DebertaV2Config,
                 embedding_sharing: str = "gdes", rtd_lambda: float = rules.RTD_LAMBDA,
                 temperature: float = rules.SAMPLING_TEMPERATURE):
        super().__init__()
        rules.check_pair(generator_config, discriminator_config, embedding_sharing)
        self.embedding_sharing = embedding_sharing
        self.rtd_lambda = float(rtd_lambda)
        self.temperature = float(temperature)
        self.generator = DebertaV2ForMaskedLM(generator_config)
        self.discriminator = DebertaV2ForReplacedTokenDetection(discriminator_config)
        if embedding_sharing != "none":
            for name in self._shared_tables():
                source = getattr(self.generator.deberta.embeddings, name)
                shared = source if embedding_sharing == "es" else DisentangledEmbedding(source)
                setattr(self.discriminator.deberta.embeddings, name, shared)

    def _shared_tables(self) -> list[str]:
        """The embedding tables both models hold: the word table, and the position table when both have one."""
        names = ["word_embeddings"]
        if (self.generator.deberta.embeddings.position_embeddings is not None
                and self.discriminator.deberta.embeddings.position_embeddings is not None):
            names.append("position_embeddings")
        return names

    def forward(self, input_ids, attention_mask=None, labels=None, token_type_ids=None, position_ids=None,
                sampling_noise=None, return_dict=None):
        """One step of the joint objective.

        input_ids (B, T): the masked ids (deberta_core.pretraining.mask_tokens); labels (B, T): the
        original id at each target, -100 elsewhere. The generator's head projects only the N targets'
        rows (row-major), as the original gathers them: generator_logits is (N, V). sampling_noise:
        uniform (N, V) or (B, T, V) in (0, 1) for the generator samples (drawn with torch.rand when None).
        Returns RTDPretrainingOutput; the loss is mlm_loss + rtd_lambda * rtd_loss, and under "gdes" the
        RTD term sends no gradient to the generator (its samples and the shared table are detached).
        """
        if labels is None:
            raise ValueError("RTD pre-training needs labels: the original ids at the masked positions, -100 elsewhere")
        states, _ = self.generator.decoder_states(input_ids, attention_mask=attention_mask,
                                                  token_type_ids=token_type_ids, position_ids=position_ids)
        targets = labels != IGNORE_INDEX
        generator_logits = self.generator.project(states[targets])
        mlm = masked_lm_loss(generator_logits, labels[targets])
        with torch.no_grad():
            noise = None if sampling_noise is None else torch.as_tensor(sampling_noise, device=labels.device)
            if noise is not None and noise.dim() == 3:
                noise = noise[targets]
            replaced = input_ids.clone()
            replaced[targets] = sample_tokens(generator_logits, self.temperature, noise).to(replaced.dtype)
            rtd_labels = (targets & (replaced != labels)).float()
        discriminator = self.discriminator(replaced, attention_mask=attention_mask, token_type_ids=token_type_ids,
                                           position_ids=position_ids, return_dict=True)
        rtd = replaced_token_loss(discriminator.logits, rtd_labels, attention_mask)
        result = RTDPretrainingOutput(mlm + self.rtd_lambda * rtd, mlm, rtd, generator_logits, discriminator.logits,
                                      replaced, rtd_labels)
        return result if resolve_output_flags(self.discriminator.config, return_dict=return_dict)[2] \
            else result.to_tuple()

    # ------------------------------------------------------------------------------ export
    def discriminator_state_dict(self) -> dict[str, torch.Tensor]:
        """The discriminator as a plain DebertaV2ForReplacedTokenDetection state dict: shared tables
        written out, a GDES table folded (generator table + delta) under its usual `.weight` key."""
        state = {}
        for key, value in self.discriminator.state_dict().items():
            if key.endswith("." + rules.GDES_DELTA):
                module = self.discriminator.get_submodule(key[: -len(rules.GDES_DELTA) - 1])
                key, value = key[: -len(rules.GDES_DELTA)] + "weight", module.weight
            state[key] = value.detach().clone()
        return state

    def export_discriminator(self, save_directory, with_head: bool = False) -> Path:
        """Save the discriminator for fine-tuning: a DebertaV2Model checkpoint (with_head: the whole
        DebertaV2ForReplacedTokenDetection), embeddings folded; any DebertaV2 class loads it."""
        config = self.discriminator.config.copy()
        model = DebertaV2ForReplacedTokenDetection(config) if with_head else DebertaV2Model(config)
        model.load_checkpoint_state(self.discriminator_state_dict(), strict=True)
        return model.save_pretrained(save_directory)

    def save_pretrained(self, save_directory) -> Path:
        """generator/ (DebertaV2ForMaskedLM), discriminator/ (DebertaV2ForReplacedTokenDetection, tables
        folded) and rtd_pretraining.json (sharing, rtd_lambda, temperature)."""
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.generator.save_pretrained(directory / "generator")
        self.export_discriminator(directory / "discriminator", with_head=True)
        rules.write_pretraining_settings(directory, self.embedding_sharing, self.rtd_lambda, self.temperature)
        return directory

    @classmethod
    def from_pretrained(cls, directory, **settings):
        """Rebuild from save_pretrained's folders; a GDES delta is recovered as discriminator - generator
        (exact up to float rounding of the fold). `settings` override rtd_pretraining.json."""
        directory = Path(directory)
        saved = rules.read_pretraining_settings(directory)
        saved.update(settings)
        generator = DebertaV2ForMaskedLM.from_pretrained(directory / "generator", strict=True)
        discriminator = DebertaV2ForReplacedTokenDetection.from_pretrained(directory / "discriminator", strict=True)
        model = cls(generator.config, discriminator.config, **saved)
        model.generator.load_state_dict(generator.state_dict())
        with torch.no_grad():
            own = model.discriminator.deberta.embeddings
            for key, value in discriminator.state_dict().items():
                name = key.removeprefix("deberta.embeddings.").removesuffix(".weight")
                table = getattr(own, name, None) if key.startswith("deberta.embeddings.") else None
                if isinstance(table, DisentangledEmbedding):
                    table._weight.copy_(value - table.source.weight)
                elif not (model.embedding_sharing == "es" and name in model._shared_tables()):
                    model.discriminator.get_parameter(key).copy_(value)
        return model.eval()
