"""Chinese messages of the errors raised by sdcourse's model modules (time_embedding.py, attention.py,
schedule.py, vae.py, text_encoder.py, blocks.py): the texts given to `tr(...)` there. Merged into
sdcourse/messages_zh.py. Same conventions as _messages_zh_ui.py: a message that starts with a name
keeps it and a full-width colon; code, identifiers, shapes and numbers stay as written.
"""

MESSAGES = {
    # --- sdcourse/attention.py --------------------------------------------------------------------------
    '{}: d_embed={} is not divisible by n_heads={}.':
        '{}：d_embed={} 不能被 n_heads={} 整除。',
    '{}: {} must be (batch, sequence, {}), got shape {}. An image feature map (B, C, H, W) becomes a sequence with x.view(B, C, H*W).transpose(1, 2).':
        '{}：{} 必须是 (batch, sequence, {})，实际形状为 {}。图像特征图 (B, C, H, W) 可用 x.view(B, C, H*W).transpose(1, 2) 变成序列。',
    'CrossAttention: context batch {} cannot broadcast to image batch {}. Give one context per image, or a single context (batch 1) shared by all.':
        'CrossAttention：context 的批量 {} 无法广播到图像的批量 {}。请为每张图像给一个上下文，或给一个所有图像共用的上下文（批量为 1）。',

    # --- sdcourse/blocks.py -----------------------------------------------------------------------------
    "attention_blocks: kind must be 'self' or 'cross', got {}.":
        "attention_blocks：kind 必须是 'self' 或 'cross'，实际为 {}。",
    'sequence_index: pixel ({}, {}) is outside a map {} pixels wide.':
        'sequence_index：像素 ({}, {}) 超出了宽 {} 像素的特征图。',
    'sequence_pixel: token index must be >= 0, got {}.':
        'sequence_pixel：词元索引必须 >= 0，实际为 {}。',
    'cannot tell the grid of {} tokens: it is not square. Pass latent_hw=(height, width) of the latent.':
        '无法确定 {} 个词元的网格：它不是正方形。请传入潜变量的 latent_hw=(height, width)。',
    'query {} is outside the latent grid {} x {}; rows 0..{}, cols 0..{}.':
        '查询位置 {} 超出了潜变量网格 {} x {}；行 0..{}，列 0..{}。',

    # --- sdcourse/schedule.py ---------------------------------------------------------------------------
    'NoiseSchedule: betas must be a 1-D tensor with one beta per timestep (e.g. 1000).':
        'NoiseSchedule：betas 必须是 1 维张量，每个时间步一个 beta（例如 1000 个）。',
    "NoiseSchedule: every beta must be in (0, 1); check the schedule's start and end values.":
        'NoiseSchedule：每个 beta 都必须在 (0, 1) 内；请检查噪声调度的起始值和结束值。',
    "NoiseSchedule.from_name: unknown schedule {}; use 'sd_v1' or 'cosine'.":
        "NoiseSchedule.from_name：未知的噪声调度 {}；请使用 'sd_v1' 或 'cosine'。",
    'NoiseSchedule: timesteps are integer indices 0 .. T-1; got a float tensor. Use t.long().':
        'NoiseSchedule：时间步是 0 .. T-1 的整数索引；实际传入的是浮点张量。请使用 t.long()。',
    'NoiseSchedule: timesteps must be in 0 .. {}, got min {} max {}.':
        'NoiseSchedule：时间步必须在 0 .. {} 内，实际最小值为 {}，最大值为 {}。',
    'add_noise: x0 {} and noise {} must have the same shape.':
        'add_noise：x0 {} 与 noise {} 的形状必须相同。',
    'add_noise: t must be one timestep per image, shape ({},); got {}.':
        'add_noise：t 必须每张图像一个时间步，形状为 ({},)；实际为 {}。',
    'inference_timesteps: num_inference_steps must be in 1 .. {}, got {}.':
        'inference_timesteps：num_inference_steps 必须在 1 .. {} 内，实际为 {}。',
    'inference_timesteps: steps_offset={} pushes a timestep past T-1; use 0 or 1.':
        'inference_timesteps：steps_offset={} 会使某个时间步超过 T-1；请使用 0 或 1。',
    "inference_timesteps: spacing must be 'leading' or 'trailing', got {}.":
        "inference_timesteps：spacing 必须是 'leading' 或 'trailing'，实际为 {}。",

    # --- sdcourse/text_encoder.py -----------------------------------------------------------------------
    'TextEncoderConfig: n_embd={} must be divisible by n_head={}.':
        'TextEncoderConfig：n_embd={} 必须能被 n_head={} 整除。',
    "TextEncoderConfig: activation {} is not built here; use one of {} (CLIP ViT-L/14 of SD v1 uses 'quick_gelu').":
        "TextEncoderConfig：这里没有实现激活函数 {}；请使用 {} 之一（SD v1 的 CLIP ViT-L/14 使用 'quick_gelu'）。",
    'TextEncoderConfig: {} must be at least 1, got {}.':
        'TextEncoderConfig：{} 必须至少为 1，实际为 {}。',
    'CLIPAttention: n_embd={} is not divisible by n_head={}.':
        'CLIPAttention：n_embd={} 不能被 n_head={} 整除。',
    'CLIPAttention: x must be (batch, tokens, {}), got shape {}.':
        'CLIPAttention：x 必须是 (batch, tokens, {})，实际形状为 {}。',
    'CLIPTextEncoder: input_ids must be a torch.Tensor of token ids, got {}. Make them with sdcourse.tokenize(tokenizer, prompts).':
        'CLIPTextEncoder：input_ids 必须是由词元 id 组成的 torch.Tensor，实际为 {}。请用 sdcourse.tokenize(tokenizer, prompts) 生成。',
    'CLIPTextEncoder: input_ids must be integer token ids, got dtype {}. Token ids index the embedding table: convert with input_ids.long() (tokenize returns long).':
        'CLIPTextEncoder：input_ids 必须是整数词元 id，实际 dtype 为 {}。词元 id 用来索引嵌入表：请用 input_ids.long() 转换（tokenize 返回的就是 long）。',
    'CLIPTextEncoder: input_ids must be 2-D (batch, tokens), got shape {}.':
        'CLIPTextEncoder：input_ids 必须是 2 维的 (batch, tokens)，实际形状为 {}。',
    'For one prompt add the batch dimension: input_ids[None].':
        '单个提示词请加上批量维度：input_ids[None]。',
    'CLIPTextEncoder: input_ids is empty, shape {}.':
        'CLIPTextEncoder：input_ids 为空，形状为 {}。',
    'CLIPTextEncoder: {} tokens but the model has only {} positions. Truncate the prompt to {} tokens: sdcourse.tokenize(tokenizer, prompts) pads or truncates every prompt to exactly that.':
        'CLIPTextEncoder：输入有 {} 个词元，但模型只有 {} 个位置。请把提示词截断到 {} 个词元：sdcourse.tokenize(tokenizer, prompts) 会把每个提示词填充或截断到正好这个长度。',
    'CLIPTextEncoder: token ids must be in 0..{}, got {}..{}. Use the tokenizer that belongs to these weights (its vocabulary size must match config.vocab_size).':
        'CLIPTextEncoder：词元 id 必须在 0..{} 内，实际为 {}..{}。请使用与这些权重配套的分词器（其词表大小必须与 config.vocab_size 一致）。',
    'CLIPTextEncoder: input_ids are on {} but the model is on {}. Move them with input_ids.to({}).':
        'CLIPTextEncoder：input_ids 在 {} 上，而模型在 {} 上。请用 input_ids.to({}) 移过去。',
    'CLIPTextEncoder: attention_mask must be a tensor of the same shape as input_ids {}, got {}. Or pass None (SD v1 does).':
        'CLIPTextEncoder：attention_mask 必须是与 input_ids {} 形状相同的张量，实际为 {}。也可以传入 None（SD v1 就是这样）。',
    'CLIPTextEncoder: attention_mask must hold only 0 (padding) and 1 (token).':
        'CLIPTextEncoder：attention_mask 只能包含 0（填充）和 1（词元）。',
    'CLIPTextEncoder: attention_mask is 0 at position 0, so that token would see nothing under the causal mask. CLIP pads on the right: keep the start token (mask 1) and pad at the end.':
        'CLIPTextEncoder：attention_mask 在位置 0 处为 0，在因果掩码下该词元将什么也看不到。CLIP 在右侧填充：保留起始词元（掩码为 1），在末尾填充。',
    "load_tokenizer: {} has neither vocab.json + merges.txt nor tokenizer.json. Give the pipeline folder or its tokenizer/ folder (e.g. huggingface_hub.snapshot_download(..., allow_patterns=['tokenizer/*'])).":
        "load_tokenizer：{} 中既没有 vocab.json + merges.txt，也没有 tokenizer.json。请给出流水线文件夹或其中的 tokenizer/ 文件夹（例如 huggingface_hub.snapshot_download(..., allow_patterns=['tokenizer/*'])）。",
    'tokenize: prompts must be a string or a non-empty list of strings, got {}.':
        'tokenize：prompts 必须是字符串或非空的字符串列表，实际为 {}。',
    "tokenize: tokenizer must be a transformers CLIPTokenizer with a pad token, e.g. CLIPTokenizer.from_pretrained(folder / 'tokenizer').":
        "tokenize：tokenizer 必须是带填充词元（pad token）的 transformers CLIPTokenizer，例如 CLIPTokenizer.from_pretrained(folder / 'tokenizer')。",
    "tokenize: the tokenizer has no model_max_length; pass max_length=77 (SD v1's text length).":
        'tokenize：分词器没有 model_max_length；请传入 max_length=77（SD v1 的文本长度）。',
    'tokenize: max_length must be at least 2 (start and end token), got {}.':
        'tokenize：max_length 至少为 2（起始词元和结束词元），实际为 {}。',

    # --- sdcourse/time_embedding.py ---------------------------------------------------------------------
    'sinusoidal_embedding: dim must be a positive even number (half cos, half sin), got {}.':
        'sinusoidal_embedding：dim 必须是正偶数（一半 cos，一半 sin），实际为 {}。',
    'sinusoidal_embedding: t must be a number or a 1-D tensor of timesteps, got shape {}. Pass e.g. torch.tensor([981]) or torch.tensor([981, 500]).':
        'sinusoidal_embedding：t 必须是一个数或由时间步组成的 1 维张量，实际形状为 {}。例如传入 torch.tensor([981]) 或 torch.tensor([981, 500])。',
    'TimeEmbedding: expected a (N, {}) sinusoidal embedding, got shape {}. Make it with sinusoidal_embedding(t, dim={}).':
        'TimeEmbedding：应为形状 (N, {}) 的正弦嵌入，实际形状为 {}。请用 sinusoidal_embedding(t, dim={}) 生成。',

    # --- sdcourse/vae.py --------------------------------------------------------------------------------
    'VAEConfig: every width must be divisible by n_groups={}; got channels={}.':
        'VAEConfig：每一级的通道数都必须能被 n_groups={} 整除；实际 channels={}。',
    'VAEConfig: layers_per_block and latent_channels must be >= 1, got {} and {}.':
        'VAEConfig：layers_per_block 和 latent_channels 必须 >= 1，实际为 {} 和 {}。',
    '{}: {} must be a torch.Tensor, got {}.':
        '{}：{} 必须是 torch.Tensor，实际为 {}。',
    '{}: {} must be 4-D (batch, {}, height, width), got shape {}. For a single one add the batch dimension: {}[None].':
        '{}：{} 必须是 4 维的 (batch, {}, height, width)，实际形状为 {}。单个输入请加上批量维度：{}[None]。',
    '{}: {} have {} channels, this VAE expects {}.':
        '{}：{} 有 {} 个通道，而这个 VAE 要求 {} 个。',
    'This looks like a latent: encode images, decode latents.':
        '这看起来是潜变量：encode 接收图像，decode 接收潜变量。',
    'This looks like an image: encode images, decode latents.':
        '这看起来是图像：encode 接收图像，decode 接收潜变量。',
    'Channels last? Use {}.permute(0, 3, 1, 2).':
        '通道在最后一维？请用 {}.permute(0, 3, 1, 2)。',
    'x (the image tokens)':
        'x（图像词元）',
    'y (the context)':
        'y（上下文）',
    '{}: {} have {} 0: nothing to {}.':
        '{}：{} 的 {} 为 0：没有可 {} 的内容。',
    '{}: {} {} {} is not a multiple of {}: the encoder halves it {} times and the decoder must give the same size back. Resize or crop to a multiple of {}, e.g. {}.':
        '{}：{} 的 {} {} 不是 {} 的倍数：编码器会将它减半 {} 次，解码器必须还原出相同的尺寸。请缩放或裁剪到 {} 的倍数，例如 {}。',
    '{}: {} are on {} but the VAE is on {}. Move them with {}.to({}).':
        '{}：{} 在 {} 上，而 VAE 在 {} 上。请用 {}.to({}) 移过去。',
    "{}: {} have dtype {} but the VAE's weights are {}. Convert with {}.to({}) after scaling pixels to [-1, 1] (x / 127.5 - 1).":
        '{}：{} 的 dtype 为 {}，而 VAE 的权重为 {}。请先把像素缩放到 [-1, 1]（x / 127.5 - 1），再用 {}.to({}) 转换。',
    "{}: {} have dtype {} but the VAE's weights are {}. Convert with {}.to({}).":
        '{}：{} 的 dtype 为 {}，而 VAE 的权重为 {}。请用 {}.to({}) 转换。',
}
