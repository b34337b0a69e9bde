"""One small adapter per model family, so the hooked forward is written once.

``engine.hooks`` spells out every block as: norm, q/k/v per query head, (rotary), causal
attention, output projection, norm, MLP. What differs between families is only where those
pieces live in the Hugging Face module tree and a few conventions, collected here:

========================  ==========================  ==================================
piece                     GPT-2 (``GPT2LMHeadModel``)  Llama family (``LlamaForCausalLM``)
========================  ==========================  ==================================
token embedding           ``transformer.wte``          ``model.embed_tokens``
positions                 learned ``transformer.wpe``  rotary, applied to q and k
norms                     LayerNorm ``ln_1``/``ln_2``  RMSNorm ``input_layernorm`` /
                                                      ``post_attention_layernorm``
q, k, v                   one Conv1D ``c_attn``       ``q_proj``/``k_proj``/``v_proj``;
                                                      k and v have fewer (shared) heads
output projection         Conv1D ``c_proj`` (bias)     Linear ``o_proj``
final norm, unembedding   ``ln_f``, ``lm_head``        ``model.norm``, ``lm_head``
========================  ==========================  ==================================

Grouped key/value heads: Llama models such as SmolLM2 have fewer key/value heads than query
heads (SmolLM2-135M: 9 query heads share 3). The engine's per-head activations stay per
*query* head: ``hook_k`` and ``hook_v`` are [batch, pos, n_heads, d_head], the shared key or
value repeated for each query head that reads it (query head h reads key/value head
``h // (n_heads // n_kv_heads)``, as Hugging Face's ``repeat_kv`` does). So patching
``hook_k`` or ``hook_v`` of head h changes what *that query head alone* sees; the other query
heads of its group keep the original key or value. Patching a shared key for the whole group
means patching each of its query heads. ``hook_q`` and ``hook_k`` are taken before the
rotary embedding (TransformerLens's convention), so a key patched in from another prompt is
rotated to the position it lands at.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from engine.loaded import LoadedModel


class GPT2Adapter:
    family = "gpt2"

    def __init__(self, lm: LoadedModel) -> None:
        self.model = lm.model
        self.blocks = lm.model.transformer.h
        facts = lm.facts  # the one reader of config field names
        self.n_heads, self.d_model, self.d_head = facts.n_heads, facts.d_model, facts.d_head

    # -- whole model
    def embed(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(token embedding, position embedding or None), each [batch, pos, d_model]."""
        import torch

        transformer = self.model.transformer
        tok = self.token_embed(ids)
        positions = torch.arange(ids.shape[1], device=ids.device)
        return tok, transformer.wpe(positions)[None].expand_as(tok)

    def token_embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.transformer.wte(ids)

    def final_norm(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.transformer.ln_f(x)

    def unembed_weight(self) -> torch.Tensor:
        return self.model.lm_head.weight  # [vocab, d_model]

    def unembed_bias(self) -> torch.Tensor | None:
        return self.model.lm_head.bias

    def lm_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.lm_head(x)

    # -- one block
    def norm1(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        return self.blocks[layer].ln_1(x)

    def norm2(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        return self.blocks[layer].ln_2(x)

    group = 1  # query heads per key/value head

    def qkv(self, layer: int, normed: torch.Tensor):
        """q, k, v per query head, [..., n_heads, d_head] each, before any rotary."""
        q, k, v = self.blocks[layer].attn.c_attn(normed).split(self.d_model, dim=-1)
        shape = (*normed.shape[:-1], self.n_heads, self.d_head)
        return q.view(shape), k.view(shape), v.view(shape)

    def qkv_grouped(self, layer: int, normed: torch.Tensor):
        """q per query head, k and v per key/value head (the same as ``qkv`` when each
        query head has its own)."""
        return self.qkv(layer, normed)

    def rotary(self, n_ctx: int, device: Any, dtype: Any):
        return None

    def scaling(self, layer: int) -> float:
        """The score scale HF uses for this layer (it folds in the per-layer option itself)."""
        attn = self.blocks[layer].attn
        scaling = getattr(attn, "scaling", None)
        if scaling is not None:
            return float(scaling)
        value = self.d_head**-0.5 if attn.scale_attn_weights else 1.0
        return value / (layer + 1) if attn.scale_attn_by_inverse_layer_idx else value

    def o_proj(self, layer: int, z_flat: torch.Tensor) -> torch.Tensor:
        return self.blocks[layer].attn.c_proj(z_flat)

    def o_bias(self, layer: int) -> torch.Tensor | None:
        return self.blocks[layer].attn.c_proj.bias

    def w_out(self, layer: int) -> torch.Tensor:
        """[head, d_head, d_model] (Conv1D stores input x output)."""
        weight = self.blocks[layer].attn.c_proj.weight
        return weight.view(self.n_heads, self.d_head, self.d_model)

    def mlp(self, layer: int, normed: torch.Tensor) -> torch.Tensor:
        return self.blocks[layer].mlp(normed)


class LlamaAdapter(GPT2Adapter):
    family = "llama"

    def __init__(self, lm: LoadedModel) -> None:
        facts = lm.facts
        self.model = lm.model
        self.blocks = lm.model.model.layers
        self.n_heads, self.n_kv_heads = facts.n_heads, facts.n_kv_heads
        self.d_model, self.d_head = facts.d_model, facts.d_head
        self.group = self.n_heads // self.n_kv_heads

    def token_embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.model.embed_tokens(ids)

    def embed(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.token_embed(ids), None

    def final_norm(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(self.model.model.norm, x)

    def norm1(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(self.blocks[layer].input_layernorm, x)

    def norm2(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(self.blocks[layer].post_attention_layernorm, x)

    def qkv(self, layer: int, normed: torch.Tensor):
        q, k, v = self.qkv_grouped(layer, normed)
        if self.group > 1:  # per query head: kv head h // group, as HF's repeat_kv
            k = k.repeat_interleave(self.group, dim=-2)
            v = v.repeat_interleave(self.group, dim=-2)
        return q, k, v

    def qkv_grouped(self, layer: int, normed: torch.Tensor):
        attn = self.blocks[layer].self_attn
        lead = normed.shape[:-1]
        q = attn.q_proj(normed).view(*lead, self.n_heads, self.d_head)
        k = attn.k_proj(normed).view(*lead, self.n_kv_heads, self.d_head)
        v = attn.v_proj(normed).view(*lead, self.n_kv_heads, self.d_head)
        return q, k, v

    def rotary(self, n_ctx: int, device: Any, dtype: Any):
        """(cos, sin), each [pos, d_head], for positions 0 .. n_ctx-1."""
        import torch

        positions = torch.arange(n_ctx, device=device)[None]
        probe = torch.empty(0, device=device, dtype=dtype)
        cos, sin = self.model.model.rotary_emb(probe, positions)
        return cos[0], sin[0]

    def scaling(self, layer: int) -> float:
        return float(self.blocks[layer].self_attn.scaling)

    def o_proj(self, layer: int, z_flat: torch.Tensor) -> torch.Tensor:
        return self.blocks[layer].self_attn.o_proj(z_flat)

    def o_bias(self, layer: int) -> torch.Tensor | None:
        return self.blocks[layer].self_attn.o_proj.bias

    def w_out(self, layer: int) -> torch.Tensor:
        """[head, d_head, d_model] (Linear stores output x input)."""
        weight = self.blocks[layer].self_attn.o_proj.weight  # [d_model, heads * d_head]
        return weight.T.reshape(self.n_heads, self.d_head, self.d_model)

    def mlp(self, layer: int, normed: torch.Tensor) -> torch.Tensor:
        return self.blocks[layer].mlp(normed)


def rms_norm(module: Any, x: torch.Tensor) -> torch.Tensor:
    """A Llama RMSNorm module applied with torch's fused kernel (the same sum, about twice
    as fast as the module's own four steps); a float32 model computes it in float32 as the
    module does."""
    import torch

    weight = module.weight
    eps = getattr(module, "variance_epsilon", None)
    if eps is None or x.dtype != torch.float32 or weight.dtype != torch.float32:
        return module(x)
    return torch.nn.functional.rms_norm(x, (x.shape[-1],), weight, eps)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Apply a rotary embedding to x [batch, pos, head, d_head] with cos/sin [pos, d_head]
    (or [batch, d_head] for one position per row, given as [batch, 1, d_head])."""
    import torch

    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos[..., None, :] + rotated * sin[..., None, :]


ADAPTERS = {"gpt2": GPT2Adapter, "llama": LlamaAdapter}
"""Adapter per family; ``LoadedModel.family`` (from the config's model_type) picks one."""


def adapter_for(lm: LoadedModel) -> GPT2Adapter:
    """The family adapter of a loaded model, built once and kept with it."""
    extra = lm.extra
    adapter = extra.get("adapter")
    if adapter is None or adapter.model is not lm.model:
        adapter = ADAPTERS[lm.family](lm)
        extra["adapter"] = adapter
    return adapter
