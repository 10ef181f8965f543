"""Chinese messages of the widgets, figures and the errors a learner meets outside the checkers
(sdcourse/widgets.py, render.py, figures.py, attention_diagram.py, record/, shapes.py, sampling.py,
text_to_image.py, pipeline.py, weights/, vae_weights.py, text_encoder_weights.py, ...): the texts
given to `tr(...)` there. Merged into sdcourse/messages_zh.py.

Conventions: a message that starts with a function name keeps it and a full-width colon
("load_unet：..."); code, identifiers, shapes and numbers stay as written. Figure text (tr(...,
figure=True)) is kept short: it must fit where the English fits.
"""

MESSAGES = {
    # --- sdcourse/attention_diagram.py -------------------------------------------------------------
    "x {}: a feature map":
        "x {}：一张特征图",
    "output {}: the input's shape":
        "输出 {}：与输入形状相同",
    "residue_long (the block's input x)":
        "residue_long（该块的输入 x）",
    "keys, values: (B, {}, {})\nweights (B, {}, h·w, {})":
        "键、值：(B, {}, {})\n注意力权重 (B, {}, h·w, {})",
    "UNET_AttentionBlock({}, {}, d_context={}): {} channels, traced on the meta device (any h, w)":
        "UNET_AttentionBlock({}, {}, d_context={})：{} 个通道，在 meta 设备上追踪（h、w 任意）",
    "trace_attention_block: n_head * d_head = {} channels do not divide into 32 GroupNorm groups. Use SD's sizes, e.g. 8 heads of 40, 80 or 160.":
        "trace_attention_block：n_head * d_head = {} 个通道无法均分为 32 个 GroupNorm 组。请使用 SD 的尺寸，例如 8 个头，每头 40、80 或 160。",
    "{}: one token per pixel":
        "{}：每个像素一个词元",
    "trace_attention_block: {} must be a positive int, got {}.":
        "trace_attention_block：{} 必须是正整数，实际为 {}。",

    # --- sdcourse/device.py ------------------------------------------------------------------------
    "progress must be True, False or 'live', got {}.":
        "progress 必须是 True、False 或 'live'，实际为 {}。",
    "set_threads: thread count must be >= 1, got {}.":
        "set_threads：线程数必须 >= 1，实际为 {}。",

    # --- sdcourse/evaluate.py ----------------------------------------------------------------------
    "judge_image: expected an image tensor (3, S, S) in [-1, 1], got {}.":
        "judge_image：应为取值在 [-1, 1] 的图像张量 (3, S, S)，实际为 {}。",
    "localisation_score: the object mask is empty.":
        "localisation_score：物体掩码为空。",
    "evaluate: need n_seeds >= 1, n_two >= 0, batch >= 1; got {}, {}, {}.":
        "evaluate：要求 n_seeds >= 1、n_two >= 0、batch >= 1；实际为 {}、{}、{}。",
    "evaluate: sampler must be 'ddpm' or 'ddim', got {}.":
        "evaluate：sampler 必须是 'ddpm' 或 'ddim'，实际为 {}。",

    # --- sdcourse/figures.py -----------------------------------------------------------------------
    "bottleneck: {} channels":
        "瓶颈：{} 个通道",
    "(B, {}, H/8, W/8) → output layer\n→ predicted noise (B, {}, H/8, W/8)":
        "(B, {}, H/8, W/8) → 输出层\n→ 预测的噪声 (B, {}, H/8, W/8)",
    "Numbers beside the columns: channels leaving an encoder\nstep, and entering a decoder step (current + skip, cat).\nGreen skips: each encoder output is pushed on a stack and\npopped by the decoder on the same row (last in, first out).":
        "两列旁的数字：离开编码器一步的通道数，\n以及进入解码器一步的通道数（当前 + 跳跃连接，cat）。\n绿色跳跃连接：每个编码器输出压入一个栈，\n由同一行的解码器弹出（后进先出）。",
    "embedding index: cos of {} frequencies | sin of the same {}":
        "嵌入下标：{} 个频率的 cos | 同样 {} 个频率的 sin",
    "distance d between the timesteps (log scale)":
        "两个时间步之间的距离 d（对数刻度）",
    "cosine similarity of t and t + d":
        "t 与 t + d 的余弦相似度",
    "nearby timesteps get similar embeddings;\nthe similarity depends only on d":
        "相邻时间步的嵌入相似；\n相似度只取决于 d",
    "{} → unsqueeze twice →\n(B, {}, 1, 1): the same number\nadded at every pixel of a channel":
        "{} → 两次 unsqueeze →\n(B, {}, 1, 1)：同一个数\n加到该通道的每个像素上",
    "UNET_ResidualBlock({}, {}), traced on the meta device (any H, W)":
        "UNET_ResidualBlock({}, {})，在 meta 设备上追踪（H、W 任意）",
    "unet_diagram: latent_size must be a positive multiple of 8 (the UNet halves it 3 times), got {}. Try 64 (a 512 px image).":
        "unet_diagram：latent_size 必须是 8 的正整数倍（UNet 会把它减半 3 次），实际为 {}。可以试试 64（对应 512 px 的图像）。",
    "unet_diagram: {} encoders but {} decoders; every skip needs a decoder.":
        "unet_diagram：有 {} 个编码器却有 {} 个解码器；每个跳跃连接都需要一个解码器。",
    "The SD v1 UNet traced on the meta device (latent {}×{} = {} px image)":
        "在 meta 设备上追踪的 SD v1 UNet（潜变量 {}×{} = {} px 图像）",
    "UNet {} traced on the meta device (latent {}×{})":
        "在 meta 设备上追踪的 UNet {}（潜变量 {}×{}）",
    "Res in→out: residual block, gets the time embedding ({})":
        "Res 输入→输出：残差块，接收时间步嵌入（{}）",
    "Attn heads×d_head: attention block, gets the text context (77×{})":
        "Attn 头数×d_head：注意力块，接收文本上下文（77×{}）",
    "Down /2: conv stride 2;  Up ×2: nearest upsampling + conv":
        "Down /2：步幅为 2 的卷积；  Up ×2：最近邻上采样 + 卷积",
    "time_embedding_heatmap: t_max must be at least 2, got {}.":
        "time_embedding_heatmap：t_max 至少为 2，实际为 {}。",
    "trace_residual_block: channels must divide into 32 GroupNorm groups, got {}, {}. Use multiples of 32 such as 320 and 640.":
        "trace_residual_block：通道数必须能均分为 32 个 GroupNorm 组，实际为 {}、{}。请使用 32 的倍数，例如 320 和 640。",
    "(channels equal)":
        "（通道数相同）",
    "trace_residual_block: {} must be a positive int, got {}.":
        "trace_residual_block：{} 必须是正整数，实际为 {}。",

    # --- sdcourse/pipeline.py ----------------------------------------------------------------------
    "sdcourse.pipeline needs diffusers and transformers: pip install diffusers transformers":
        "sdcourse.pipeline 需要 diffusers 和 transformers：pip install diffusers transformers",
    "timestep must be a number, a 0-d tensor, or one per sample ({},); got shape {}.":
        "timestep 必须是一个数、一个 0 维张量，或每个样本一个 ({},)；实际形状为 {}。",
    "CourseUNet wraps a sdcourse.Diffusion, got {}.":
        "CourseUNet 包装的是 sdcourse.Diffusion，实际为 {}。",
    "CourseUNet: {} belong to other UNets (ControlNet, LCM, IP-Adapter, LoRA, ...); the course's SD v1 UNet takes only sample, timestep and encoder_hidden_states. Use diffusers' own UNet for those features.":
        "CourseUNet：{} 属于其他 UNet（ControlNet、LCM、IP-Adapter、LoRA 等）；本课程的 SD v1 UNet 只接收 sample、timestep 和 encoder_hidden_states。需要这些功能时请使用 diffusers 自己的 UNet。",

    # --- sdcourse/record/maps.py -------------------------------------------------------------------
    "normalize must be one of {}, got {}.":
        "normalize 必须是 {} 之一，实际为 {}。",
    "AttentionMaps.from_weights: kind must be 'self' or 'cross', got {}.":
        "AttentionMaps.from_weights：kind 必须是 'self' 或 'cross'，实际为 {}。",
    "AttentionMaps: no block {}. Recorded blocks: {}.":
        "AttentionMaps：没有块 {}。已记录的块：{}。",
    "AttentionMaps: time_reduce must be 'mean' or 'sum', got {}.":
        "AttentionMaps：time_reduce 必须是 'mean' 或 'sum'，实际为 {}。",
    "AttentionMaps: nothing recorded for block {} at timestep {}.":
        "AttentionMaps：块 {} 在时间步 {} 没有任何记录。",
    "AttentionMaps: heads were averaged while recording; record with heads='all' to pick a head.":
        "AttentionMaps：记录时已对各注意力头取平均；要选单个头，请用 heads='all' 记录。",
    "AttentionMaps: head {} out of range; this block has {} heads (0..{}).":
        "AttentionMaps：头 {} 超出范围；该块有 {} 个头（0..{}）。",
    "AttentionMaps: no recorded block matches groups={} factors={}. Recorded: {}.":
        "AttentionMaps：没有已记录的块匹配 groups={} factors={}。已记录：{}。",
    "AttentionMaps.token_maps: these are self-attention maps; use query_map.":
        "AttentionMaps.token_maps：这些是自注意力图；请使用 query_map。",
    "AttentionMaps.query_map: these are cross-attention maps; use token_maps.":
        "AttentionMaps.query_map：这些是交叉注意力图；请使用 token_maps。",
    "AttentionMaps.from_weights: block {} has shape {}; give (Lq, Lk), (H, Lq, Lk) or (B, H, Lq, Lk) weights.":
        "AttentionMaps.from_weights：块 {} 的形状为 {}；请给出 (Lq, Lk)、(H, Lq, Lk) 或 (B, H, Lq, Lk) 的注意力权重。",
    "AttentionMaps.from_weights: self-attention weights must be square, got {}.":
        "AttentionMaps.from_weights：自注意力权重必须是方阵，实际为 {}。",
    "AttentionMaps: timesteps were summed while recording; record with AttentionRecorder(..., per_timestep=True) to look at one timestep.":
        "AttentionMaps：记录时已对各时间步求和；要查看单个时间步，请用 AttentionRecorder(..., per_timestep=True) 记录。",
    "AttentionMaps.query_map: only query {} was recorded; record with query=None to keep every query pixel (small latents only).":
        "AttentionMaps.query_map：只记录了查询像素 {}；要保留每个查询像素，请用 query=None 记录（仅限小的潜变量）。",
    "AttentionMaps.query_map: every query row was recorded; pass query=(row, col).":
        "AttentionMaps.query_map：记录的是每一行查询；请传入 query=(row, col)。",
    "AttentionMaps.token_maps: token index {} out of range for {} context tokens.":
        "AttentionMaps.token_maps：词元下标 {} 超出范围，上下文只有 {} 个词元。",

    # --- sdcourse/record/recorder.py ---------------------------------------------------------------
    "AttentionRecorder: a timestep tag must be one number, got a tensor of shape {}.":
        "AttentionRecorder：时间步标签必须是一个数，实际是形状为 {} 的张量。",
    "AttentionRecorder: a timestep must be a number such as 981, got {}.":
        "AttentionRecorder：时间步必须是一个数，例如 981，实际为 {}。",
    "AttentionRecorder: model must be a torch nn.Module (e.g. sdcourse.Diffusion), got {}.":
        "AttentionRecorder：model 必须是 torch nn.Module（例如 sdcourse.Diffusion），实际为 {}。",
    "AttentionRecorder: kind must be 'cross' or 'self', got {}.":
        "AttentionRecorder：kind 必须是 'cross' 或 'self'，实际为 {}。",
    "AttentionRecorder: heads must be 'mean' or 'all', got {}.":
        "AttentionRecorder：heads 必须是 'mean' 或 'all'，实际为 {}。",
    "AttentionRecorder: half must be 'cond' or 'uncond', got {}.":
        "AttentionRecorder：half 必须是 'cond' 或 'uncond'，实际为 {}。",
    "AttentionRecorder: query=(row, col) is for kind='self'; cross-attention keeps every pixel.":
        "AttentionRecorder：query=(row, col) 只用于 kind='self'；交叉注意力会保留每个像素。",
    "AttentionRecorder: {} holds no course {}-attention module.":
        "AttentionRecorder：{} 中没有本课程的 {}-attention 模块。",
    "AttentionRecorder: blocks={} factors={} match none of {}.":
        "AttentionRecorder：blocks={} factors={} 与 {} 都不匹配。",
    "AttentionRecorder: this recorder is already recording; nest different recorders instead.":
        "AttentionRecorder：这个记录器已经在记录；请改为嵌套不同的记录器。",
    "AttentionRecorder(cfg=True): batch {} is odd, but classifier-free guidance runs [uncond, cond] halves. Pass torch.cat([x, x]) and torch.cat([uncond_context, cond_context]), or use cfg=False.":
        "AttentionRecorder(cfg=True)：批量 {} 是奇数，但无分类器引导按 [uncond, cond] 两半运行。请传入 torch.cat([x, x]) 和 torch.cat([uncond_context, cond_context])，或使用 cfg=False。",
    "AttentionRecorder(cfg=True): the two halves of the batch hold different latents. With classifier-free guidance both passes see the same latent: torch.cat([x, x]) with contexts [uncond, cond].":
        "AttentionRecorder(cfg=True)：批量的两半是不同的潜变量。使用无分类器引导时，两次前向看到的是同一个潜变量：torch.cat([x, x])，上下文为 [uncond, cond]。",
    "AttentionRecorder: block {} would store {} = {} numbers (limit max_elements={}). For self-attention pass query=(row, col); or heads='mean', or fewer blocks/factors, or raise max_elements.":
        "AttentionRecorder：块 {} 需要存储 {} = {} 个数（上限 max_elements={}）。自注意力请传入 query=(row, col)；或者用 heads='mean'、减少 blocks/factors，或调大 max_elements。",
    "AttentionRecorder(cfg=True): the first half of the context is not the unconditional (empty prompt) context. This course's order is [uncond, cond]: torch.cat([uncond_context, cond_context]).":
        "AttentionRecorder(cfg=True)：上下文的前一半不是无条件（空提示词）上下文。本课程的顺序是 [uncond, cond]：torch.cat([uncond_context, cond_context])。",
    "AttentionRecorder(cfg=True): attention batch {} is odd; classifier-free guidance needs [uncond, cond] halves (torch.cat([x, x])). Use cfg=False for a plain batch.":
        "AttentionRecorder(cfg=True)：注意力的批量 {} 是奇数；无分类器引导需要 [uncond, cond] 两半（torch.cat([x, x])）。普通批量请使用 cfg=False。",
    "AttentionRecorder: sample={} out of range for a kept batch of {}.":
        "AttentionRecorder：sample={} 超出范围，保留的批量只有 {}。",

    # --- sdcourse/render.py ------------------------------------------------------------------------
    "Largest attention matrix: <b>{}</b> ({}, {}); all of them together {}. The explicit softmax(QK&#7488;)V path materialises one at a time; F.scaled_dot_product_attention never does.":
        "最大的注意力矩阵：<b>{}</b>（{}，{}）；全部加起来 {}。显式的 softmax(QK&#7488;)V 写法每次会实际生成一个这样的矩阵；F.scaled_dot_product_attention 从不生成。",
    "sinusoidal_embedding(t={}): {} numbers, fast frequencies on the left of each half":
        "sinusoidal_embedding(t={})：{} 个数，每一半中左侧是高频",
    "cosine similarity of t={} with every timestep s: near timesteps look alike":
        "t={} 与每个时间步 s 的余弦相似度：相近的时间步彼此相似",
    "feature map (B, {}, {}, {}): pixel (row {}, col {})":
        "特征图 (B, {}, {}, {})：像素（第 {} 行，第 {} 列）",
    "sequence (B, {}, {}): token {} = {} * {} + {}":
        "序列 (B, {}, {})：词元 {} = {} * {} + {}",
    "token index":
        "词元下标",
    "all blocks":
        "所有块",
    "mean of {}":
        "均值：{}",
    "query pixel {}":
        "查询像素 {}",
    "all timesteps":
        "所有时间步",
    "mean of heads":
        "各注意力头的均值",
    "time_embedding_data: t_max must be an int >= 2, got {}.":
        "time_embedding_data：t_max 必须是 >= 2 的整数，实际为 {}。",
    "time_embedding_data: t must be in 0..{}, got {}.":
        "time_embedding_data：t 必须在 0..{} 之间，实际为 {}。",
    "sequence view: {}x{} has too many pixels to draw; use at most 64x64.":
        "sequence view：{}x{} 的像素太多，无法绘制；最多 64x64。",
    "render_sequence: row {} is outside a map {} pixels high.":
        "render_sequence：第 {} 行超出了高 {} 像素的特征图。",
    "channel (first {} of {})":
        "通道（{1} 个中的前 {0} 个）",
    "skip stack (ch)":
        "跳跃连接栈（通道数）",
    "self: {}heads x L x L":
        "自注意力：{}头数 x L x L",
    "cross: {}heads x L x {}":
        "交叉注意力：{}头数 x L x {}",
    "image: expected (H, W, 3), (H, W) or (3, H, W), got shape {}.":
        "image：应为 (H, W, 3)、(H, W) 或 (3, H, W)，实际形状为 {}。",
    "attention_map: self-attention maps differ in size per block; pick a block.":
        "attention_map：各块的自注意力图大小不同；请选择一个块。",
    "share of attention, as recorded":
        "注意力份额（按记录值）",
    "map / its max":
        "图 / 其最大值",
    "stretched: min 0, max 1":
        "拉伸：最小 0，最大 1",
    "map / its sum":
        "图 / 其总和",
    "map over the sample\n(same colour scale)":
        "叠加在样本上的注意力图\n（相同色标）",
    "render_token_maps: needs cross-attention maps (AttentionRecorder(kind='cross')).":
        "render_token_maps：需要交叉注意力图（AttentionRecorder(kind='cross')）。",
    "sequence view: {} must be a positive int, got {}.":
        "sequence view：{} 必须是正整数，实际为 {}。",
    "image: a tensor must be (3, H, W) or (1, 3, H, W), got {}.":
        "image：张量必须是 (3, H, W) 或 (1, 3, H, W)，实际为 {}。",
    "<b>image {} x {} px, batch {}</b>: latent {} x {}, widths {}":
        "<b>图像 {} x {} px，批量 {}</b>：潜变量 {} x {}，通道宽度 {}",
    ", {} heads; memory counted in {}":
        "，{} 个注意力头；内存按 {} 计算",

    # --- sdcourse/sampling.py ----------------------------------------------------------------------
    "timestep t={} is outside 0 .. {}.":
        "时间步 t={} 超出了 0 .. {} 的范围。",
    "prev_t={} must be smaller than t={} (sampling goes from noisy to clean).":
        "prev_t={} 必须小于 t={}（采样是从含噪到干净）。",
    "ddpm_step: noise {} must have the shape of x_t {}.":
        "ddpm_step：噪声 {} 的形状必须与 x_t {} 相同。",
    "ddim_step: eps {} and x_t {} must have the same shape.":
        "ddim_step：eps {} 与 x_t {} 的形状必须相同。",
    "guided_noise: batch {} is odd; expected the two halves [uncond, cond] from model(torch.cat([x, x]), torch.cat([uncond_context, cond_context]), time).":
        "guided_noise：批量 {} 是奇数；应为 model(torch.cat([x, x]), torch.cat([uncond_context, cond_context]), time) 输出的 [uncond, cond] 两半。",
    "cfg_inputs: contexts must have batch 1 or {} (one per latent); got cond {}, uncond {}.":
        "cfg_inputs：上下文的批量必须是 1 或 {}（每个潜变量一个）；实际 cond 为 {}，uncond 为 {}。",
    "cfg_inputs: cond {} and uncond {} contexts differ in shape.":
        "cfg_inputs：cond {} 与 uncond {} 两个上下文的形状不同。",
    "sample: sampler must be 'ddim' or 'ddpm', got {}.":
        "sample：sampler 必须是 'ddim' 或 'ddpm'，实际为 {}。",
    "sample: context must be (1 or {}, L, d_context), got {}.":
        "sample：context 必须是 (1 或 {}, L, d_context)，实际为 {}。",
    "sample: prediction must be 'epsilon' or 'v', got {}.":
        "sample：prediction 必须是 'epsilon' 或 'v'，实际为 {}。",
    "sample: guidance_scale != 1 needs uncond_context (the embeddings of the empty prompt), or use guidance_scale=1.":
        "sample：guidance_scale != 1 时需要 uncond_context（空提示词的嵌入），否则请使用 guidance_scale=1。",
    "sample: give shape=(B, C, h, w) or the starting latents.":
        "sample：请给出 shape=(B, C, h, w) 或起始潜变量。",

    # --- sdcourse/shapes.py ------------------------------------------------------------------------
    "trace: config must be an sdcourse.UNetConfig (or None for SD v1), got {}.":
        "trace：config 必须是 sdcourse.UNetConfig（SD v1 用 None），实际为 {}。",
    "trace: batch must be a positive int, got {}.":
        "trace：batch 必须是正整数，实际为 {}。",
    "trace: n_tokens must be a positive int (77 for CLIP), got {}.":
        "trace：n_tokens 必须是正整数（CLIP 为 77），实际为 {}。",
    "trace: dtype must be a floating torch dtype such as torch.float16, got {}.":
        "trace：dtype 必须是浮点型 torch dtype，例如 torch.float16，实际为 {}。",
    "image {} must be a multiple of 64 between 64 and {}, got {}. The latent is 1/8 of the image and the UNet halves it three more times, so sides must divide by 64: try {}.":
        "图像 {} 必须是 64 到 {} 之间的 64 的倍数，实际为 {}。潜变量是图像的 1/8，UNet 还要再减半三次，所以边长必须能被 64 整除：试试 {}。",

    # --- sdcourse/text_encoder_weights.py ----------------------------------------------------------
    "No CLIP text encoder weights in {}: no key ends in embeddings.token_embedding.weight (the keys look like {} ...). Expected an SD v1.x single file ({}*) or the pipeline's text_encoder/ folder (text_model.* or bare names).":
        "{} 中没有 CLIP 文本编码器权重：没有以 embeddings.token_embedding.weight 结尾的键（键的样子是 {} ...）。应为 SD v1.x 单文件（{}*）或流水线的 text_encoder/ 文件夹（text_model.* 或不带前缀的名字）。",
    "config.json describes a {} model, not a CLIP text model ('clip_text_model'). Give the pipeline's text_encoder/ folder (SD v1: CLIP ViT-L/14's text model).":
        "config.json 描述的是 {} 模型，不是 CLIP 文本模型（'clip_text_model'）。请给出流水线的 text_encoder/ 文件夹（SD v1：CLIP ViT-L/14 的文本模型）。",
    "config.json asks for the activation {}; the course's CLIP text encoder builds {} (SD v1's CLIP ViT-L/14 uses 'quick_gelu').":
        "config.json 要求激活函数 {}；本课程的 CLIP 文本编码器只实现了 {}（SD v1 的 CLIP ViT-L/14 用的是 'quick_gelu'）。",
    "{} is an SDXL checkpoint (its text encoders live under conditioner.embedders.*): SDXL uses two text encoders (CLIP ViT-L/14 and OpenCLIP ViT-bigG) and reads their penultimate layers, not SD v1's single CLIP text encoder. Use an SD v1.x checkpoint, e.g. v1-5-pruned-emaonly.safetensors.":
        "{} 是 SDXL 检查点（其文本编码器位于 conditioner.embedders.* 下）：SDXL 使用两个文本编码器（CLIP ViT-L/14 和 OpenCLIP ViT-bigG），并读取它们的倒数第二层，而不是 SD v1 的单个 CLIP 文本编码器。请使用 SD v1.x 检查点，例如 v1-5-pruned-emaonly.safetensors。",
    "{} is an SD 2.x checkpoint: its text encoder is OpenCLIP ViT-H/14 (cond_stage_model.model.*: 1024 wide, 24 layers, GELU, fused q/k/v in_proj, names like transformer.resblocks.0.attn), not SD v1's CLIP ViT-L/14 (cond_stage_model.transformer.*, 768 wide). Use an SD v1.x checkpoint, e.g. v1-5-pruned-emaonly.safetensors.":
        "{} 是 SD 2.x 检查点：其文本编码器是 OpenCLIP ViT-H/14（cond_stage_model.model.*：宽 1024，24 层，GELU，融合的 q/k/v in_proj，名字形如 transformer.resblocks.0.attn），而不是 SD v1 的 CLIP ViT-L/14（cond_stage_model.transformer.*，宽 768）。请使用 SD v1.x 检查点，例如 v1-5-pruned-emaonly.safetensors。",
    "{} does not exist. Download the weights first, e.g. huggingface_hub.snapshot_download('stable-diffusion-v1-5/stable-diffusion-v1-5', allow_patterns=['text_encoder/*', 'tokenizer/*']).":
        "{} 不存在。请先下载权重，例如 huggingface_hub.snapshot_download('stable-diffusion-v1-5/stable-diffusion-v1-5', allow_patterns=['text_encoder/*', 'tokenizer/*'])。",
    "load_text_encoder: dtype must be a floating torch.dtype (torch.float16, torch.float32, ...), got {}.":
        "load_text_encoder：dtype 必须是浮点型 torch.dtype（torch.float16、torch.float32 等），实际为 {}。",
    "load_text_encoder: config must be a sdcourse TextEncoderConfig, got {}.":
        "load_text_encoder：config 必须是 sdcourse 的 TextEncoderConfig，实际为 {}。",
    "export_text_encoder: layout must be one of {}, got {}.":
        "export_text_encoder：layout 必须是 {} 之一，实际为 {}。",
    "text_projection belongs to CLIPTextModelWithProjection (e.g. SDXL's text_encoder_2), not SD v1's CLIPTextModel.":
        "text_projection 属于 CLIPTextModelWithProjection（例如 SDXL 的 text_encoder_2），而不是 SD v1 的 CLIPTextModel。",
    "A renamed key shows up as one missing and one unexpected; mis-shaped keys mean another configuration (pass config=...) or another model.":
        "改了名的键会显示为一个缺失加一个多余；形状不符的键说明是另一种配置（请传入 config=...）或另一个模型。",
    "No text encoder weights in the folder {} (it holds: {}). Expected one of {}":
        "文件夹 {} 中没有文本编码器权重（其中有：{}）。应为以下之一：{}",
    "(sharded checkpoints are not supported)":
        "（不支持分片检查点）",
    "The weights in {} do not fit the course's CLIP text encoder ({}):":
        "{} 中的权重与本课程的 CLIP 文本编码器（{}）不匹配：",

    # --- sdcourse/text_to_image.py -----------------------------------------------------------------
    "guided_eps: guidance needs the context [uncond, cond] of batch {}, got {}; build it with prompt_contexts(..., guided=True).":
        "guided_eps：引导需要批量为 {} 的上下文 [uncond, cond]，实际为 {}；请用 prompt_contexts(..., guided=True) 构造。",
    "img2img: strength={} keeps int({} * {}) = 0 of the {} steps: nothing to denoise. Raise strength to at least {} or num_inference_steps.":
        "img2img：strength={} 只保留 {} 步中的 int({} * {}) = 0 步：没有可去噪的步。请把 strength 调到至少 {}，或增大 num_inference_steps。",
    "scheduler config: the course's sampler implements SD v1's settings (scaled_linear betas, epsilon prediction, no clipping, leading or trailing spacing); this config has {}.":
        "scheduler config：本课程的采样器实现的是 SD v1 的设置（scaled_linear betas、epsilon 预测、不裁剪、leading 或 trailing 间隔）；这个配置有 {}。",
    "load_text_to_image: {} does not exist. Give a diffusers pipeline folder or an SD v1.x single-file checkpoint (.safetensors).":
        "load_text_to_image：{} 不存在。请给出 diffusers 流水线文件夹或 SD v1.x 单文件检查点（.safetensors）。",
    "img2img: strength must be a number in [0, 1] (0 keeps the image, 1 ignores it), got {}.":
        "img2img：strength 必须是 [0, 1] 中的数（0 保留原图，1 忽略原图），实际为 {}。",
    "img2img: image must be a tensor (B, 3, H, W) or (3, H, W) with values in [0, 1].":
        "img2img：image 必须是取值在 [0, 1] 的张量 (B, 3, H, W) 或 (3, H, W)。",
    "img2img: {} image(s) for {} prompt(s); give one image per prompt.":
        "img2img：{} 张图像对应 {} 个提示词；每个提示词请给一张图像。",
    "TextToImage: prompt must be a string or a non-empty list of strings, got {}.":
        "TextToImage：prompt 必须是字符串或非空的字符串列表，实际为 {}。",
    "TextToImage: num_inference_steps must be a positive int, got {}.":
        "TextToImage：num_inference_steps 必须是正整数，实际为 {}。",
    "TextToImage: guidance_scale must be >= 1, got {}. 1 means no guidance (one pass per step); SD v1 is usually run at 7.5. (diffusers silently turns guidance off below 1; the course refuses instead.)":
        "TextToImage：guidance_scale 必须 >= 1，实际为 {}。1 表示不引导（每步一次前向）；SD v1 通常用 7.5。（diffusers 在小于 1 时会悄悄关闭引导；本课程则直接拒绝。）",
    "TextToImage: sampler must be one of {}, got {}.":
        "TextToImage：sampler 必须是 {} 之一，实际为 {}。",
    "load_text_to_image: {} is not a diffusers pipeline folder: no {}. Give the folder save_pretrained / snapshot_download wrote, or a single file + tokenizer=.":
        "load_text_to_image：{} 不是 diffusers 流水线文件夹：缺少 {}。请给出 save_pretrained / snapshot_download 写出的文件夹，或单文件 + tokenizer=。",
    "load_text_to_image: a single-file checkpoint holds no tokenizer. Pass tokenizer= a folder with vocab.json and merges.txt (e.g. the tokenizer/ of stable-diffusion-v1-5, snapshot_download(..., allow_patterns=['tokenizer/*'])).":
        "load_text_to_image：单文件检查点中没有分词器。请给 tokenizer= 传入含 vocab.json 和 merges.txt 的文件夹（例如 stable-diffusion-v1-5 的 tokenizer/，snapshot_download(..., allow_patterns=['tokenizer/*'])）。",
    "TextToImage: latents {} must be {} for {} prompt(s) at {}x{} (latents are 8x smaller than the image).":
        "TextToImage：对 {2} 个提示词、{3}x{4} 的尺寸，latents {0} 应为 {1}（潜变量比图像小 8 倍）。",
    "TextToImage: {} must be a positive multiple of 8 (the VAE downsamples 8x), got {}; e.g. {}.":
        "TextToImage：{} 必须是 8 的正整数倍（VAE 下采样 8 倍），实际为 {}；例如 {}。",

    # --- sdcourse/tiny_tokenizer.py ----------------------------------------------------------------
    "write_tiny_tokenizer: words must be lowercase ASCII letters, got {}.":
        "write_tiny_tokenizer：单词必须由小写 ASCII 字母组成，实际为 {}。",

    # --- sdcourse/toy.py ---------------------------------------------------------------------------
    "make_batch: size must be a multiple of 8 and >= 16 (the UNet halves it 3 times), got {}.":
        "make_batch：size 必须是 8 的倍数且 >= 16（UNet 会把它减半 3 次），实际为 {}。",
    "make_batch: n must be >= 1, got {}.":
        "make_batch：n 必须 >= 1，实际为 {}。",
    "Tokenizer.encode: expected a caption string, got {}.":
        "Tokenizer.encode：应为一个描述字符串，实际为 {}。",
    "Tokenizer: unknown word(s) {} in {}. Use only: {}.":
        "Tokenizer：{1} 中有未知单词 {0}。只能使用：{2}。",
    "Tokenizer: {} has {} tokens with <start>/<end>, more than max_tokens={}. Shorten the caption or build Tokenizer(max_tokens={}).":
        "Tokenizer：{} 连同 <start>/<end> 共有 {} 个词元，超过了 max_tokens={}。请缩短描述，或构造 Tokenizer(max_tokens={})。",
    "Tokenizer: pass a list of captions, e.g. tokenizer(['red circle top left']).":
        "Tokenizer：请传入描述的列表，例如 tokenizer(['red circle top left'])。",
    "make_batch: {} is a probability in [0, 1], got {}.":
        "make_batch：{} 是概率，应在 [0, 1] 中，实际为 {}。",
    "parse_caption: unknown word(s) {} in {}.":
        "parse_caption：{1} 中有未知单词 {0}。",
    "Tokenizer: the vocabulary must contain {}; {} is missing.":
        "Tokenizer：词表必须包含 {}；缺少 {}。",
    "unknown shape {}; use one of {}.":
        "未知形状 {}；请使用 {} 之一。",
    "parse_caption: unknown position {}; use one of {}.":
        "parse_caption：未知位置 {}；请使用 {} 之一。",

    # --- sdcourse/vae_latents.py -------------------------------------------------------------------
    "encode_image: images must be a torch.Tensor, got {}. From PIL: torchvision.transforms.functional.to_tensor(picture) gives (3, H, W) in [0, 1].":
        "encode_image：images 必须是 torch.Tensor，实际为 {}。从 PIL 图像转换：torchvision.transforms.functional.to_tensor(picture) 会得到取值在 [0, 1] 的 (3, H, W)。",
    "decode_latents: latents must be a torch.Tensor, got {}.":
        "decode_latents：latents 必须是 torch.Tensor，实际为 {}。",
    "encode_image: images must be floats in [0, 1] or uint8, got dtype {}.":
        "encode_image：images 必须是 [0, 1] 中的浮点数或 uint8，实际 dtype 为 {}。",
    "encode_image: pixel values go from {} to {}; expected [0, 1].":
        "encode_image：像素值从 {} 到 {}；应在 [0, 1] 中。",
    "0-255 floats: divide by 255.":
        "0-255 的浮点数：请除以 255。",
    "For images already in [-1, 1] call vae.encode(images) yourself and multiply by vae.scaling_factor.":
        "如果图像已在 [-1, 1] 中，请自己调用 vae.encode(images)，再乘以 vae.scaling_factor。",

    # --- sdcourse/vae_weights.py -------------------------------------------------------------------
    "They match VAEConfig.tiny(): pass config=VAEConfig.tiny().":
        "它们与 VAEConfig.tiny() 一致：请传入 config=VAEConfig.tiny()。",
    "The VAE in {} has {}, not SD v1's channels={}, layers_per_block=2, latent_channels=4. The number of GroupNorm groups is not stored in the weights, so say which model it is: load_vae(path, config=VAEConfig(..., n_groups=...)), or give its diffusers folder with config.json.{}":
        "{} 中的 VAE 是 {}，而不是 SD v1 的 channels={}、layers_per_block=2、latent_channels=4。GroupNorm 的组数不保存在权重里，所以请说明是哪个模型：load_vae(path, config=VAEConfig(..., n_groups=...))，或给出带 config.json 的 diffusers 文件夹。{}",
    "Expected a single-file SD checkpoint (first_stage_model.*), a diffusers VAE (the vae/ folder: encoder.down_blocks.*, ...) or a CompVis VAE file (encoder.down.*, ...).":
        "应为 SD 单文件检查点（first_stage_model.*）、diffusers VAE（vae/ 文件夹：encoder.down_blocks.* 等）或 CompVis VAE 文件（encoder.down.* 等）。",
    "This diffusers VAE config differs from SD v1's AutoencoderKL in: {}. The course's VAE has {}. Use the vae/ folder of an SD v1.x model.":
        "这个 diffusers VAE 配置与 SD v1 的 AutoencoderKL 在以下方面不同：{}。本课程的 VAE 为 {}。请使用 SD v1.x 模型的 vae/ 文件夹。",
    "{} does not exist. Download the weights first, e.g. huggingface_hub.snapshot_download('stable-diffusion-v1-5/stable-diffusion-v1-5', allow_patterns=['vae/*']) or hf_hub_download(..., 'v1-5-pruned-emaonly.safetensors').":
        "{} 不存在。请先下载权重，例如 huggingface_hub.snapshot_download('stable-diffusion-v1-5/stable-diffusion-v1-5', allow_patterns=['vae/*']) 或 hf_hub_download(..., 'v1-5-pruned-emaonly.safetensors')。",
    "No VAE weights in the folder {} (it holds: {}). Expected a diffusers vae/ folder with one of {}, or a pipeline folder that has one.":
        "文件夹 {} 中没有 VAE 权重（其中有：{}）。应为含有 {} 之一的 diffusers vae/ 文件夹，或包含这样一个文件夹的流水线文件夹。",
    "load_vae: dtype must be a floating torch.dtype (torch.float16, torch.float32, ...), got {}.":
        "load_vae：dtype 必须是浮点型 torch.dtype（torch.float16、torch.float32 等），实际为 {}。",
    "load_vae: config must be a sdcourse VAEConfig, got {}.":
        "load_vae：config 必须是 sdcourse 的 VAEConfig，实际为 {}。",
    "export_diffusers_vae: {} is not a key of a VAE with {}.":
        "export_diffusers_vae：{} 不是配置为 {} 的 VAE 的键。",
    "No VAE weights found: the keys look like {} ...":
        "没有找到 VAE 权重：键的样子是 {} ...",
    "This file holds a UNet only.":
        "这个文件只含 UNet。",
    "The course loads every part of a pipeline from one SD v1.x checkpoint, so the VAE of this file is refused too":
        "本课程从同一个 SD v1.x 检查点加载流水线的每个部分，所以这个文件的 VAE 也被拒绝",
    "(SDXL's VAE also needs scaling_factor 0.13025, not SD v1's 0.18215).":
        "（SDXL 的 VAE 还需要 scaling_factor 0.13025，而不是 SD v1 的 0.18215）。",
    "The weights in {} ({} layout) do not fit the course's VAE ({}):":
        "{} 中的权重（{} 布局）与本课程的 VAE（{}）不匹配：",

    # --- sdcourse/weights/config.py ----------------------------------------------------------------
    "They match UNetConfig.tiny(): pass config=UNetConfig.tiny().":
        "它们与 UNetConfig.tiny() 一致：请传入 config=UNetConfig.tiny()。",
    "The UNet in {} has widths {} and a {}-wide context, not SD v1's {} and {}. The number of heads and of GroupNorm groups are not stored in the weights, so say which model it is: load_unet(path, config=UNetConfig(channels={}, d_context={}, n_head=..., n_groups=...)).{}":
        "{} 中的 UNet 通道宽度为 {}、上下文宽度为 {}，而不是 SD v1 的 {} 和 {}。注意力头数和 GroupNorm 组数不保存在权重里，所以请说明是哪个模型：load_unet(path, config=UNetConfig(channels={}, d_context={}, n_head=..., n_groups=...))。{}",
    "This diffusers config is an SDXL UNet (addition_embed_type={}, cross_attention_dim={}, transformer_layers_per_block={}); the course's UNet is SD v1.x. Use an SD v1.x model.":
        "这个 diffusers 配置是 SDXL UNet（addition_embed_type={}、cross_attention_dim={}、transformer_layers_per_block={}）；本课程的 UNet 是 SD v1.x。请使用 SD v1.x 模型。",
    "This diffusers config is an SD 2.x UNet (cross_attention_dim={}, use_linear_projection={}, attention_head_dim={}); the course's UNet is SD v1.x. Use an SD v1.x model.":
        "这个 diffusers 配置是 SD 2.x UNet（cross_attention_dim={}、use_linear_projection={}、attention_head_dim={}）；本课程的 UNet 是 SD v1.x。请使用 SD v1.x 模型。",
    "This diffusers UNet differs from the SD v1 block plan in: {}. The course's UNet expects {} (and block_out_channels (c1, c2, c3, c3)). Use an SD v1.x UNet.":
        "这个 diffusers UNet 与 SD v1 的模块结构在以下方面不同：{}。本课程的 UNet 要求 {}（以及 block_out_channels (c1, c2, c3, c3)）。请使用 SD v1.x 的 UNet。",

    # --- sdcourse/weights/detect.py ----------------------------------------------------------------
    "The course rebuilds the SD v1 UNet; use an SD v1.x checkpoint, e.g. stable-diffusion-v1-5/stable-diffusion-v1-5 (v1-5-pruned-emaonly.safetensors or its unet/ folder).":
        "本课程重建的是 SD v1 UNet；请使用 SD v1.x 检查点，例如 stable-diffusion-v1-5/stable-diffusion-v1-5（v1-5-pruned-emaonly.safetensors 或其 unet/ 文件夹）。",
    "No UNet weights found: the keys look like {} ... Expected an original single-file SD checkpoint (model.diffusion_model.*), a diffusers UNet (down_blocks.*, in unet/), or a saved course Diffusion (unet.encoders.*). A VAE or text-encoder file alone does not hold the UNet.":
        "没有找到 UNet 权重：键的样子是 {} ... 应为原始的 SD 单文件检查点（model.diffusion_model.*）、diffusers UNet（down_blocks.*，位于 unet/）或保存的本课程 Diffusion（unet.encoders.*）。单独的 VAE 或文本编码器文件不含 UNet。",
    "an extra embedding of image size and crop (add_embedding / label_emb)":
        "额外的图像尺寸与裁剪嵌入（add_embedding / label_emb）",
    "more than one transformer layer in an attention block":
        "一个注意力块中有不止一个 Transformer 层",
    "a 2048-wide text context (two text encoders)":
        "2048 宽的文本上下文（两个文本编码器）",
    "two text encoders (conditioner.embedders)":
        "两个文本编码器（conditioner.embedders）",
    "linear proj_in/proj_out (SD v1 uses 1x1 convolutions)":
        "线性的 proj_in/proj_out（SD v1 用 1x1 卷积）",
    "a 1024-wide text context (OpenCLIP ViT-H; SD v1 uses CLIP ViT-L/14's 768)":
        "1024 宽的文本上下文（OpenCLIP ViT-H；SD v1 用 CLIP ViT-L/14 的 768）",
    "an OpenCLIP text encoder (cond_stage_model.model)":
        "OpenCLIP 文本编码器（cond_stage_model.model）",
    ". SDXL's UNet has three levels instead of four, up to 10 transformer layers per block, a 2048-wide context and size conditioning: a different architecture whose weights cannot fit the course's UNet.":
        "。SDXL 的 UNet 只有三层分辨率而不是四层，每个块最多 10 个 Transformer 层，上下文宽 2048，并以图像尺寸为条件：这是另一种架构，其权重无法装进本课程的 UNet。",
    ". SD 2.x keeps the block plan but changes the context width (1024), the projections (linear) and the heads (64 channels each: 5/10/20 heads instead of 8), so its weights do not fit the course's UNet.":
        "。SD 2.x 保留了模块结构，但改变了上下文宽度（1024）、投影（线性层）和注意力头（每头 64 个通道：5/10/20 个头而不是 8 个），所以其权重无法装进本课程的 UNet。",
    "{} holds an SDXL UNet, not SD v1.x. Found:":
        "{} 含有的是 SDXL UNet，不是 SD v1.x。发现：",
    "{} holds an SD 2.x UNet, not SD v1.x. Found:":
        "{} 含有的是 SD 2.x UNet，不是 SD v1.x。发现：",

    # --- sdcourse/weights/ema.py -------------------------------------------------------------------
    "as asked (ema=True)":
        "按要求（ema=True）",
    "the copy meant for sampling; pass ema=False for the raw training weights":
        "这是用于采样的那一份；要原始训练权重请传入 ema=False",
    "{} holds the UNet as EMA weights only: loaded the EMA weights (model_ema.*, {} tensors), {}.":
        "{} 只以 EMA 权重的形式保存了 UNet：已加载 EMA 权重（model_ema.*，{} 个张量），{}。",
    "{} holds two copies of the UNet: loaded the raw training weights (model.diffusion_model.*) as asked (ema=False).":
        "{} 含有两份 UNet：已按要求（ema=False）加载原始训练权重（model.diffusion_model.*）。",
    "the EMA copy (model_ema.*) in {}":
        "{} 中的 EMA 副本（model_ema.*）",
    "{} holds two copies of the UNet: loaded the EMA weights (model_ema.*, {} tensors), {}.":
        "{} 含有两份 UNet：已加载 EMA 权重（model_ema.*，{} 个张量），{}。",
    "ema=True, but {} has no EMA copy of the UNet (no model_ema.* keys): it holds one set of weights (an '-emaonly' file already stores the EMA weights as model.diffusion_model.*). Pass ema=None to load what it has.":
        "ema=True，但 {} 中没有 UNet 的 EMA 副本（没有 model_ema.* 键）：它只有一套权重（'-emaonly' 文件本来就把 EMA 权重存为 model.diffusion_model.*）。请传入 ema=None 加载它已有的权重。",
    "ema=False, but {} holds only the EMA copy of the UNet (model_ema.*), no raw training weights (model.diffusion_model.*). Pass ema=None or ema=True.":
        "ema=False，但 {} 中只有 UNet 的 EMA 副本（model_ema.*），没有原始训练权重（model.diffusion_model.*）。请传入 ema=None 或 ema=True。",

    # --- sdcourse/weights/errors.py ----------------------------------------------------------------
    "{} ({} bytes) cannot be read: it looks truncated or corrupt ({}). An interrupted download is the usual cause: delete the file and download it again (huggingface_hub resumes and checks downloads).":
        "无法读取 {}（{} 字节）：它看起来被截断或已损坏（{}）。常见原因是下载中断：请删除该文件并重新下载（huggingface_hub 会续传并校验下载）。",
    "{} is not a weights file: {}. Download the weights file itself (e.g. with huggingface_hub.hf_hub_download, or `git lfs pull` in a cloned model repository).":
        "{} 不是权重文件：{}。请下载权重文件本身（例如用 huggingface_hub.hf_hub_download，或在克隆的模型仓库中运行 `git lfs pull`）。",
    "Is this an SD v1.x UNet (not SD 2.x, SDXL, or a whole pipeline file)? A renamed or hand-edited key also ends up here.":
        "这是 SD v1.x 的 UNet 吗（而不是 SD 2.x、SDXL 或整个流水线文件）？改了名或手工编辑过的键也会出现在这里。",
    "{} key(s) of {} have no place in the SD v1 UNet:":
        "{1}中有 {0} 个键在 SD v1 UNet 中没有对应位置：",

    # --- sdcourse/weights/export.py ----------------------------------------------------------------
    "save_unet: write a .safetensors file (safe to share), got {}.":
        "save_unet：请写成 .safetensors 文件（可安全分享），实际为 {}。",

    # --- sdcourse/weights/files.py -----------------------------------------------------------------
    "read {} before the checkpoint was closed (inside its `with` block).":
        "在检查点关闭之后读取了 {}（请在它的 `with` 块内读取）。",
    "{}: unknown file type {}. Give a .safetensors file (preferred) or a pickle ({}, read with weights_only=True).":
        "{}：未知文件类型 {}。请给出 .safetensors 文件（推荐）或 pickle 文件（{}，用 weights_only=True 读取）。",
    "it is a Git LFS pointer (a small text file standing for the real file)":
        "它是一个 Git LFS 指针文件（一个代替真实文件的小文本文件）",
    "it is an HTML or XML page (a login or error page saved instead of the file?)":
        "它是一个 HTML 或 XML 页面（也许保存下来的是登录页或错误页，而不是文件？）",
    "the header promises {} bytes, the file has {}":
        "文件头声明有 {} 字节，文件实际只有 {} 字节",
    "{} does not exist (or is a folder). Download the weights file first.":
        "{} 不存在（或是一个文件夹）。请先下载权重文件。",
    "the file is empty (0 bytes): the download did not finish":
        "文件大小为 0 字节：下载没有完成",
    "it starts with {}, not a safetensors header":
        "它以 {} 开头，不是 safetensors 文件头",
    "the header is incomplete":
        "文件头不完整",
    "the header is not valid JSON: {}":
        "文件头不是合法的 JSON：{}",

    # --- sdcourse/weights/load.py ------------------------------------------------------------------
    "{} does not exist. Download the weights first, e.g. huggingface_hub.snapshot_download('stable-diffusion-v1-5/stable-diffusion-v1-5', allow_patterns=['unet/*']) or hf_hub_download(..., 'v1-5-pruned-emaonly.safetensors').":
        "{} 不存在。请先下载权重，例如 huggingface_hub.snapshot_download('stable-diffusion-v1-5/stable-diffusion-v1-5', allow_patterns=['unet/*']) 或 hf_hub_download(..., 'v1-5-pruned-emaonly.safetensors')。",
    "load_unet: dtype must be a floating torch.dtype (torch.float16, torch.float32, ...), got {}.":
        "load_unet：dtype 必须是浮点型 torch.dtype（torch.float16、torch.float32 等），实际为 {}。",
    "load_unet: config must be a sdcourse.UNetConfig, got {}.":
        "load_unet：config 必须是 sdcourse.UNetConfig，实际为 {}。",
    "load_unet: ema must be None (EMA weights when present), True or False, got {}.":
        "load_unet：ema 必须是 None（有 EMA 权重时使用它）、True 或 False，实际为 {}。",
    "ema=True, but {} ({} layout) has no EMA copy of the UNet.":
        "ema=True，但 {}（{} 布局）中没有 UNet 的 EMA 副本。",
    "No UNet weights in the folder {} (it holds: {}). Expected one of {}":
        "文件夹 {} 中没有 UNet 权重（其中有：{}）。应为以下之一：{}",
    "load_unet: {}: left out {} non-tensor entries of the pickle:":
        "load_unet：{}：略过了 pickle 中 {} 个非张量条目：",
    "The weights in {} ({} layout) do not fit the course's UNet ({}):":
        "{} 中的权重（{} 布局）与本课程的 UNet（{}）不匹配：",

    # --- sdcourse/weights/pickles.py ---------------------------------------------------------------
    "it starts with {}, neither a zip archive nor a pickle":
        "它以 {} 开头，既不是 zip 归档也不是 pickle",
    "Refused to load {}: this pickle needs more than tensors to load (it asks for the Python object(s) {}). Unpickling it fully could run arbitrary code on this machine (a pickle may call any Python function while it loads), so its instructions were only read, and nothing in it was executed. What to do: use the .safetensors version of these weights (e.g. v1-5-pruned-emaonly.safetensors), or, only if you trust its source, convert it to safetensors once in a throw-away environment and load that file.":
        "拒绝加载 {}：这个 pickle 需要的不止是张量（它要求加载 Python 对象 {}）。完整反序列化它可能在这台机器上运行任意代码（pickle 在加载时可以调用任何 Python 函数），所以只读取了它的指令，其中的任何内容都没有执行。怎么办：使用这些权重的 .safetensors 版本（例如 v1-5-pruned-emaonly.safetensors）；或者，仅当你信任其来源时，在一个用完即弃的环境中把它转换一次为 safetensors，再加载那个文件。",
    "it holds a {}, not a dict of tensors":
        "它存的是 {}，而不是张量的字典",
    "the zip archive has no central directory":
        "zip 归档没有中央目录",

    # --- sdcourse/weights/rename.py ----------------------------------------------------------------
    "this diffusers checkpoint":
        "这个 diffusers 检查点",
    "this CompVis checkpoint":
        "这个 CompVis 检查点",
    "source_keys: layout must be one of {}, got {}.":
        "source_keys：layout 必须是 {} 之一，实际为 {}。",
    "source_keys: {} is not a key of the SD v1 `Diffusion` model.":
        "source_keys：{} 不是 SD v1 `Diffusion` 模型的键。",

    # --- sdcourse/weights/report.py ----------------------------------------------------------------
    "... and {} more":
        "... 还有 {} 个",
    "The weights do not fit the model:":
        "权重与模型不匹配：",

    # --- sdcourse/widgets.py -----------------------------------------------------------------------
    "{}: a live widget ({}). Run the notebook to move its controls; the picture is its first view.":
        "{}：一个实时交互控件（{}）。运行笔记本即可拖动其控件；图片是它的初始画面。",
    "pixel (row {}, col {}) &harr; token <b>{} * {} + {} = {}</b>":
        "像素（第 {} 行，第 {} 列）&harr; 词元 <b>{} * {} + {} = {}</b>",
    "height (px)":
        "高度 (px)",
    "width (px)":
        "宽度 (px)",
    "attention_explorer: expected an AttentionRecorder, AttentionMaps, a dict of weights or a weights tensor, got {}. Record with sdcourse.record.AttentionRecorder(model) first.":
        "attention_explorer：应为 AttentionRecorder、AttentionMaps、注意力权重字典或注意力权重张量，实际为 {}。请先用 sdcourse.record.AttentionRecorder(model) 记录。",
    "colour scale":
        "色标",
    "time_embedding_view: dim must be a positive even int (half cos, half sin), got {}.":
        "time_embedding_view：dim 必须是正偶数（一半 cos，一半 sin），实际为 {}。",
    "time_embedding_view: t_max must be an int >= 2 (SD uses 1000), got {}.":
        "time_embedding_view：t_max 必须是 >= 2 的整数（SD 用 1000），实际为 {}。",
    "a timestep slider and the embedding of t":
        "时间步滑块和 t 的嵌入",
    "pixel (row, col) <-> token index":
        "像素 (row, col) <-> 词元下标",
    "shape_ledger: config must be an sdcourse.UNetConfig (or None for SD v1), got {}.":
        "shape_ledger：config 必须是 sdcourse.UNetConfig（SD v1 用 None），实际为 {}。",
    "image size, batch and dtype -> every stage's shapes":
        "图像尺寸、批量和 dtype -> 每一阶段的形状",
    "shares as recorded (0..1)":
        "记录的份额 (0..1)",
    "attention_explorer: nothing was recorded. Run the model inside `with recorder:` first.":
        "attention_explorer：什么都没有记录。请先在 `with recorder:` 中运行模型。",
    "recorded {}-attention, block by block":
        "已记录的 {}-attention，逐块查看",
    "query row":
        "查询行",
    "query col":
        "查询列",
    "all (aggregate)":
        "全部（汇总）",
    "mean over heads":
        "各注意力头的均值",
    "mean of ticked resolutions":
        "已勾选分辨率的均值",
    '{}: expected a feature map (batch, {}, height, width), got shape {}.': '{}：应为特征图 (batch, {}, height, width)，实际形状为 {}。',
    '{}: expected the time embedding as (1 or batch, {}), got shape {}. It is the output of TimeEmbedding, not the raw timestep.': '{}：时间步嵌入应为 (1 或 batch, {})，实际形状为 {}。它是 TimeEmbedding 的输出，而不是原始的时间步。',
    '{}: time batch {} cannot broadcast to feature batch {}. Give one time embedding shared by all (batch 1) or one per sample.': '{}：time 的批量 {} 无法广播到特征图的批量 {}。请给出一个所有样本共用的时间步嵌入（批量为 1），或每个样本一个。',
    'UNET_AttentionBlock: expected context (batch, tokens, {}), got shape {}.': 'UNET_AttentionBlock：context 应为 (batch, tokens, {})，实际形状为 {}。',
    'Diffusion: latent must be 4-D (batch, {}, height, width), got shape {}. For a single latent add the batch dimension: latent[None].': 'Diffusion：latent 必须是 4 维的 (batch, {}, height, width)，实际形状为 {}。单个潜变量请加上批量维度：latent[None]。',
    'Diffusion: context batch {} cannot broadcast to latent batch {}. Give one context per latent or a single one (batch 1) for all. With classifier-free guidance both the latent and the context hold the two halves (see sdcourse.sampling).': 'Diffusion：context 的批量 {} 无法广播到 latent 的批量 {}。请为每个潜变量给一个 context，或给一个所有潜变量共用的 context（批量为 1）。使用无分类器引导时，latent 和 context 都包含两半（见 sdcourse.sampling）。',
    'Diffusion: time must be the sinusoidal embedding (1 or batch, {}), got shape {}. Make it with sdcourse.sinusoidal_embedding(t, dim={}).': 'Diffusion：time 必须是正弦嵌入 (1 或 batch, {})，实际形状为 {}。请用 sdcourse.sinusoidal_embedding(t, dim={}) 生成。',
    'Diffusion: time batch {} cannot broadcast to latent batch {}. Give one timestep for all (1, 320) or one per latent (B, 320).': 'Diffusion：time 的批量 {} 无法广播到 latent 的批量 {}。请给一个所有潜变量共用的时间步 (1, 320)，或每个潜变量一个 (B, 320)。',
    'UNetConfig: every width must be divisible by n_head={} and n_groups={}; got channels={}.': 'UNetConfig：每个通道宽度都必须能被 n_head={} 和 n_groups={} 整除；实际 channels={}。',
    'Diffusion: {} must be a torch.Tensor, got {}.': 'Diffusion：{} 必须是 torch.Tensor，实际是 {}。',
    'Diffusion: latent has {} channels, this model expects {}. Pass the VAE latent (B, 4, H/8, W/8), not the RGB image (B, 3, H, W).': 'Diffusion：latent 有 {} 个通道，这个模型需要 {} 个。请传入 VAE 的潜变量 (B, 4, H/8, W/8)，而不是 RGB 图像 (B, 3, H, W)。',
    'Diffusion: latent has {} channels, this model expects {} (config.in_channels).': 'Diffusion：latent 有 {} 个通道，这个模型需要 {} 个（config.in_channels）。',
    'Diffusion: latent {} is 0; the latent needs at least one pixel per side.': 'Diffusion：latent 的 {} 为 0；潜变量每条边至少需要一个像素。',
    "Diffusion: latent {} {} is not a multiple of 8. This UNet is the notes' (and CompVis's original): it halves the resolution three times and doubles it back, so the skip connections line up only for multiples of 8. Use a latent {} such as {} (image {} px), or build the model with UNetConfig(..., any_latent_size=True): it upsamples to each skip's size, as diffusers' UNet does (SD pipelines take any image side that is a multiple of 8 px).": 'Diffusion：latent 的 {} {} 不是 8 的倍数。这个 UNet 是笔记中的版本（也是 CompVis 的原版）：它把分辨率减半三次再加倍回来，所以只有 8 的倍数才能让跳跃连接对齐。请使用 {} 为 {} 这样的潜变量（图像 {} 像素），或者用 UNetConfig(..., any_latent_size=True) 构建模型：它会像 diffusers 的 UNet 一样上采样到每条跳跃连接的尺寸（SD 流水线接受任何是 8 像素倍数的图像边长）。',
    'Diffusion: context must be (batch, tokens, {}), got shape {}.': 'Diffusion：context 必须是 (batch, tokens, {})，实际形状为 {}。',
    'Diffusion: {} is on {} but the model is on {}. Move it with {}.to({}) (or the model with model.to(...)).': 'Diffusion：{} 在 {} 上，但模型在 {} 上。请用 {}.to({}) 移动它（或用 model.to(...) 移动模型）。',
    "Diffusion: {} has dtype {} but the model's weights are {}. Convert it with {}.to({}) (or the model with model.to({})).": 'Diffusion：{} 的 dtype 是 {}，但模型的权重是 {}。请用 {}.to({}) 转换它（或用 model.to({}) 转换模型）。',
    'SD v1 expects CLIP ViT-L/14 text embeddings, e.g. (1, 77, 768).': 'SD v1 需要 CLIP ViT-L/14 的文本嵌入，例如 (1, 77, 768)。',
    'token {}': '词元 {}',
    'token {} {}': '词元 {} {}',
    '{}, {}\n{}\n{}; {}; {}x{} grid': '{}，{}\n{}\n{}；{}；{}x{} 网格',
    'batch': '批量',
    'block': '块',
    'head': '注意力头',
    'timestep': '时间步',
}
