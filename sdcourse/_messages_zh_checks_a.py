"""Chinese messages of the checkers' shared core and of notebooks 00-05 (sdcourse/checks/core.py,
advice.py, hints.py, nb00_inputs.py ... nb05_unet.py). Merged into sdcourse/messages_zh.py.

Conventions: the `[ok]`/`[wrong]`/`[todo]`/`[hint]` line starts `[tag] name: ` with an ASCII colon,
as the lines that have no table entry of their own do (`[hint] {name}: {line}`, `[wrong] {name}: {hint}`),
and as core.exercise expects when it cuts `[wrong] name: ` off a message. A mistake name is a short
noun phrase: it is read inside "看起来是：{}。".
"""

MESSAGES = {
    # --- core.py: the lines every checker prints -------------------------------------------------
    "[ok] {}: matches the reference (max |difference| {})": "[ok] {}: 与参考实现一致（最大绝对误差 {}）",
    "[wrong] {}: max |difference| {} from the reference. {}": "[wrong] {}: 与参考实现的最大绝对误差为 {}。{}",
    "[ok] {}: every shape is right": "[ok] {}: 所有形状都正确",
    "[wrong] {}: your code raised {}: {}. {}": "[wrong] {}: 你的代码抛出了 {}：{}。{}",
    "[wrong] {}: {}({}) failed with {}: {}": "[wrong] {}: 构造 {}({}) 时出错，抛出了 {}：{}",
    "It looks like: {}. {}": "看起来是：{}。{}",
    "It looks like: {}.": "看起来是：{}。",
    "Shape {}, expected {}.": "形状为 {}，应为 {}。",
    "{} has shape {}, expected {}.": "{} 的形状为 {}，应为 {}。",
    "Expected a torch.Tensor, got {}.": "应为 torch.Tensor，实际得到的是 {}。",
    "Compare your code line by line with the cells above.": "请把你的代码与上方单元格逐行对照。",
    "Expected {}. Go back to the table of the three inputs above.": "应为 {}。请回看上方“三个输入”的表格。",
    "Your module's parameter names differ from the reference. Missing: {}; unexpected: {}. Use the notes' "
    "attribute names (e.g. groupnorm_feature, conv_feature, linear_time).":
        "你的模块的参数名与参考实现不一致。缺少：{}；多出：{}。请使用笔记中的属性名"
        "（例如 groupnorm_feature、conv_feature、linear_time）。",
    "Parameter shapes differ (name, yours, reference): {}": "参数形状不一致（参数名，你的形状，参考形状）：{}",
    "your code calls {}, the very thing this exercise asks you to write by hand. Write it with basic tensor "
    "operations (view, mean, matmul, softmax, ...).":
        "你的代码调用了 {}，而这正是本练习要你亲手实现的部分。请用基本的张量运算"
        "（view、mean、matmul、softmax 等）来写。",
    "not written yet": "尚未编写",

    # --- hints.py ------------------------------------------------------------------------------
    "none yet": "暂无",
    "checks.hint: no exercise called {}. Exercises with hints: {}.":
        "checks.hint：没有名为 {} 的练习。有提示的练习：{}。",

    # --- advice.py: mistake names (notebooks 03-05) -------------------------------------------
    "divided by d_head instead of sqrt(d_head)": "除以了 d_head，而不是 sqrt(d_head)",
    "missing 1/sqrt(d_head)": "缺少 1/sqrt(d_head) 缩放",
    "1/sqrt(d_embed) instead of 1/sqrt(d_head)": "缩放用了 1/sqrt(d_embed)，而不是 1/sqrt(d_head)",
    "softmax over the queries instead of the keys": "softmax 沿查询而不是沿键计算",
    "heads split with a bare view/reshape to (B, H, L, d_head), no transpose":
        "直接用 view/reshape 把注意力头拆成 (B, H, L, d_head)，没有转置",
    "heads merged with a bare view/reshape, no transpose back": "直接用 view/reshape 合并注意力头，没有先转置回来",
    "heads taken from interleaved channels": "注意力头取的是交错的通道",
    "keys and values swapped": "键与值颠倒",
    "reshape without transpose (channels and pixels mixed)": "只做 reshape 没有转置（通道与像素混在一起）",
    "pixels in column-major order (width before height)": "像素按列优先排列（宽在高之前）",
    "GeGLU halves swapped (gate first, value second)": "GeGLU 的两半颠倒（门控在前，值在后）",
    "tanh-approximate GELU instead of the exact one": "用了 tanh 近似的 GELU，而不是精确的 GELU",
    "ReLU instead of GELU (that is ReGLU)": "用了 ReLU 而不是 GELU（那是 ReGLU）",
    "SiLU instead of GELU (that is SwiGLU)": "用了 SiLU 而不是 GELU（那是 SwiGLU）",
    "forgot the long residual": "漏掉了长残差连接",
    "forgot the short residual around self-attention": "漏掉了自注意力外的短残差连接",
    "forgot the short residual around cross-attention": "漏掉了交叉注意力外的短残差连接",
    "forgot the short residual around the feed-forward": "漏掉了前馈层外的短残差连接",
    "GroupNorm eps 1e-5 (attention blocks use 1e-6)": "GroupNorm 的 eps 用了 1e-5（注意力块用 1e-6）",
    "cross-attention before self-attention": "交叉注意力放在了自注意力之前",
    "skips concatenated in the wrong order: cat(skip, x)": "跳跃连接的拼接顺序错误：cat(skip, x)",
    "bottleneck skipped": "跳过了瓶颈层",
    "forgot to add the skip's channels": "漏加了跳跃连接的通道数",
    "skips taken first-in-first-out (a queue, not a stack)": "跳跃连接按先进先出取用（当成了队列，而不是栈）",
    "repeat instead of repeat_interleave (the image tiled, not each pixel doubled)":
        "用了 repeat 而不是 repeat_interleave（整张图被平铺，而不是每个像素各复制一份）",
    "bilinear instead of nearest interpolation": "用了双线性插值而不是最近邻插值",
    "no transpose after the view: (B, L, H, d_head)": "view 之后没有转置：(B, L, H, d_head)",
    "transposed back but not merged: (B, L, H, d_head)": "转置回来了，但没有合并：(B, L, H, d_head)",
    "no transpose: (B, C, H*W) is not a sequence of pixels": "没有转置：(B, C, H*W) 不是像素序列",
    "height and width swapped": "高与宽颠倒",
    "only one axis doubled": "只有一个轴放大了两倍",
    "attention weights not returned (None)": "没有返回注意力权重（得到 None）",
    "attention weights never handed to self.observer": "注意力权重从未交给 self.observer",
    "scores before the softmax given as the weights": "把 softmax 之前的分数当作了权重",
    "q/k/v projections with a bias (SD's have none)": "q/k/v 投影带了偏置（SD 的没有）",
    "forgot the 3x3 conv after the upsampling": "漏掉了上采样之后的 3x3 卷积",
    "3x3 conv before the upsampling instead of after": "3x3 卷积放在了上采样之前，而不是之后",
    "return inside the loop: only the first layer ran": "return 写在了循环里：只运行了第一层",
    "a plain layer (conv, Upsample) skipped: no else branch": "普通层（卷积、Upsample）被跳过：缺少 else 分支",
    "layers run in reverse order": "各层按相反顺序运行",
    "mode='nearest-exact' instead of 'nearest'": "用了 mode='nearest-exact' 而不是 'nearest'",
    "bilinear instead of nearest resizing": "用双线性而不是最近邻来缩放尺寸",
    "zero-padded to the skip's size instead of resized": "用零填充到跳跃连接的尺寸，而不是缩放",

    # --- advice.py: what to do about each mistake ----------------------------------------------
    "Divide Q K^T by sqrt(d_head) before the softmax; without it the scores grow with d_head and the softmax "
    "saturates.": "在 softmax 之前把 Q K^T 除以 sqrt(d_head)；不除的话，分数随 d_head 增大，softmax 会饱和。",
    "The scale is 1/sqrt(d_head): it brings the scores' variance (about d_head) back to 1.":
        "缩放因子是 1/sqrt(d_head)：它把分数的方差（约为 d_head）拉回到 1。",
    "Each head's scores are dot products of d_head numbers, so divide by sqrt(d_head) (= sqrt(d_embed / n_heads)), "
    "not by sqrt(d_embed) of the whole width.":
        "每个注意力头的分数是 d_head 个数的点积，所以要除以 sqrt(d_head)（= sqrt(d_embed / n_heads)），"
        "而不是按整个宽度除以 sqrt(d_embed)。",
    "Use softmax(dim=-1): for each query, the weights over the keys sum to 1.":
        "用 softmax(dim=-1)：对每个查询，它在所有键上的权重之和为 1。",
    "Split with .view(B, L, H, d_head).transpose(1, 2). A direct .view(B, H, L, d_head) cuts the sequence, not "
    "the channels, into heads.":
        "用 .view(B, L, H, d_head).transpose(1, 2) 拆分。直接 .view(B, H, L, d_head) 切成多个头的是序列，而不是通道。",
    "Merge with .transpose(1, 2).reshape(B, L, H * d_head); reshaping (B, H, L, d_head) directly mixes the tokens "
    "of different heads.":
        "用 .transpose(1, 2).reshape(B, L, H * d_head) 合并；直接 reshape (B, H, L, d_head) 会把不同注意力头的词元混在一起。",
    "Head h owns the contiguous channels h*d_head .. (h+1)*d_head - 1: view as (B, L, H, d_head), not "
    "(B, L, d_head, H).":
        "第 h 个头拥有连续的通道 h*d_head .. (h+1)*d_head - 1：应 view 成 (B, L, H, d_head)，而不是 (B, L, d_head, H)。",
    "k_proj(context) gives the keys (compared with the queries), v_proj(context) the values (mixed by the "
    "weights).": "k_proj(context) 得到键（用来与查询比较），v_proj(context) 得到值（按权重加权混合）。",
    "Go (B, C, H, W) -> view(B, C, H*W) -> transpose(1, 2). A bare reshape(B, H*W, C) keeps the shape right but "
    "fills each token with one channel's neighbouring pixels.":
        "按 (B, C, H, W) -> view(B, C, H*W) -> transpose(1, 2) 变换。直接 reshape(B, H*W, C) 形状虽然对，"
        "但每个词元装的是同一通道里相邻的几个像素。",
    "Token index = row * W + column (row-major): flatten H and W as they are stored, without swapping them "
    "first.": "词元下标 = 行 * W + 列（行优先）：按存储顺序展平 H 和 W，不要先交换它们。",
    "x, gate = h.chunk(2, dim=-1): the FIRST half is the value, the SECOND half goes through GELU.":
        "x, gate = h.chunk(2, dim=-1)：前一半是值，后一半才经过 GELU。",
    "SD uses the exact GELU: F.gelu(gate), not F.gelu(gate, approximate='tanh').":
        "SD 用的是精确的 GELU：F.gelu(gate)，而不是 F.gelu(gate, approximate='tanh')。",
    "The gate goes through GELU, not ReLU.": "门控经过的是 GELU，不是 ReLU。",
    "The gate goes through GELU, not SiLU.": "门控经过的是 GELU，不是 SiLU。",
    "Return self.conv_output(x) + residue_long, where residue_long is the block's input.":
        "返回 self.conv_output(x) + residue_long，其中 residue_long 是这个块的输入。",
    "After self-attention add residue_short (the tokens before layernorm_1).":
        "自注意力之后加上 residue_short（进入 layernorm_1 之前的词元）。",
    "After cross-attention add residue_short (the tokens before layernorm_2).":
        "交叉注意力之后加上 residue_short（进入 layernorm_2 之前的词元）。",
    "After linear_geglu_2 add residue_short (the tokens before layernorm_3).":
        "linear_geglu_2 之后加上 residue_short（进入 layernorm_3 之前的词元）。",
    "nn.GroupNorm(n_groups, channels, eps=1e-6) in the attention block (SD's checkpoint was trained so).":
        "注意力块里用 nn.GroupNorm(n_groups, channels, eps=1e-6)（SD 的检查点就是这样训练的）。",
    "Self-attention (layernorm_1, attention_1) comes first, then cross-attention with the context.":
        "先做自注意力（layernorm_1、attention_1），再做与上下文的交叉注意力。",
    "Concatenate the current features first: torch.cat((x, skip_connections.pop()), dim=1).":
        "拼接时当前特征在前：torch.cat((x, skip_connections.pop()), dim=1)。",
    "Run x = self.bottleneck(x, context, time) between the encoders and the decoders.":
        "在编码器与解码器之间运行瓶颈层：x = self.bottleneck(x, context, time)。",
    "A decoder's input is the current features AND the skip it pops: add both channel counts.":
        "解码器的输入是当前特征加上它弹出的跳跃连接：两者的通道数要相加。",
    "The skips form a stack: the decoder pops the LAST encoder output first (list.pop()).":
        "跳跃连接构成一个栈：解码器先弹出最后一个编码器的输出（list.pop()）。",
    "Double each pixel: repeat_interleave(2, dim=-1) and repeat_interleave(2, dim=-2), not .repeat(...).":
        "逐像素复制：repeat_interleave(2, dim=-1) 和 repeat_interleave(2, dim=-2)，而不是 .repeat(...)。",
    "SD's Upsample uses mode='nearest': every pixel becomes a 2x2 block of copies.":
        "SD 的 Upsample 用 mode='nearest'：每个像素被复制成一个 2x2 的块。",
    "After view(B, L, H, d_head), transpose(1, 2) puts the heads next to the batch: (B, H, L, d_head).":
        "view(B, L, H, d_head) 之后，用 transpose(1, 2) 把头维度移到批量维度旁边：(B, H, L, d_head)。",
    "After transpose(1, 2), join the last two dimensions: .reshape(B, L, H * d_head).":
        "transpose(1, 2) 之后，把最后两个维度合并：.reshape(B, L, H * d_head)。",
    "view(B, C, H*W) keeps the channels first; transpose(1, 2) makes one row per pixel: (B, H*W, C).":
        "view(B, C, H*W) 之后通道仍在前；transpose(1, 2) 让每个像素占一行：(B, H*W, C)。",
    "Split H*W back as (height, width), in that order: the tokens run row by row.":
        "把 H*W 按 (height, width) 的顺序拆回去：词元是逐行排列的。",
    "Double both axes: repeat_interleave(2) along the width (dim=-1) AND the height (dim=-2).":
        "两个轴都要放大两倍：沿宽度（dim=-1）和高度（dim=-2）各做一次 repeat_interleave(2)。",
    "Return both: (output, weights), where weights is the (B, H, Lq, Lk) softmax you multiplied v by.":
        "两者都要返回：(output, weights)，其中 weights 是你拿来乘 v 的那个 (B, H, Lq, Lk) softmax 结果。",
    "After the softmax add: if self.observer is not None: self.observer(self, weights). That is how sdcourse's "
    "recorder (notebook 07) reads where each token looks.":
        "在 softmax 之后加上：if self.observer is not None: self.observer(self, weights)。"
        "sdcourse 的记录器（笔记本 07）正是靠它读出每个词元在看哪里。",
    "The weights are softmax(scores, dim=-1): positive, each query's row sums to 1.":
        "权重是 softmax(scores, dim=-1)：全为正数，每个查询对应的一行之和为 1。",
    "Use nn.Linear(..., bias=in_proj_bias) with in_proj_bias=False for q, k, v; out_proj keeps its bias.":
        "q、k、v 用 nn.Linear(..., bias=in_proj_bias)，且 in_proj_bias=False；out_proj 保留偏置。",
    "After doubling the pixels, run self.conv (3x3, padding 1) on the result.":
        "把像素放大两倍之后，再对结果运行 self.conv（3x3，padding 1）。",
    "Upsample first, then the 3x3 conv: the conv refines the blocky 2x2 copies.":
        "先上采样，再做 3x3 卷积：卷积用来细化复制出来的那些 2x2 方块。",
    "Put `return x` after the for loop (one indentation level out), so every layer runs.":
        "把 `return x` 放到 for 循环之后（少缩进一级），这样每一层都会运行。",
    "End the if/elif with `else: x = layer(x)`: convs and Upsample take only x.":
        "在 if/elif 的最后加上 `else: x = layer(x)`：卷积和 Upsample 只接收 x。",
    "Run the layers in their order: `for layer in self:`.": "按原有顺序运行各层：`for layer in self:`。",
    "diffusers resizes with F.interpolate(x, size=..., mode='nearest'): source pixel floor(i * in / out).":
        "diffusers 用 F.interpolate(x, size=..., mode='nearest') 缩放：目标像素 i 取源像素 floor(i * in / out)。",
    "Resize with mode='nearest' (as the x2 upsampling does), not bilinear.":
        "用 mode='nearest' 缩放（与 2 倍上采样相同），不要用双线性。",
    "Resize to the skip's size with F.interpolate(x, size=skip_size, mode='nearest'); zeros are not what the "
    "trained convs expect.":
        "用 F.interpolate(x, size=skip_size, mode='nearest') 缩放到跳跃连接的尺寸；训练好的卷积并不期望看到补上的零。",
    "Your result has shape {}.": "你的结果形状为 {}。",

    # --- nb00_inputs.py: the shapes of the UNet's three inputs ----------------------------------
    "not divided by 8": "没有除以 8",
    "3 channels (RGB) instead of 4": "3 个通道（RGB）而不是 4 个",
    "divided by 64 instead of 8": "除以了 64 而不是 8",
    "no batch dimension": "缺少批量维度",
    "320 channels (the first feature map) instead of 4": "320 个通道（第一张特征图的通道数）而不是 4 个",
    "The VAE shrinks each side of the image 8x: a 512x512 image is a 64x64 latent.":
        "VAE 把图像的每条边缩小 8 倍：512x512 的图像对应 64x64 的潜变量。",
    "The UNet never sees RGB pixels: the VAE latent has 4 channels.":
        "UNet 从不直接处理 RGB 像素：VAE 的潜变量有 4 个通道。",
    "Shapes are (batch, channels, height, width): height comes first.":
        "形状的顺序是 (batch, channels, height, width)：高在前。",
    "64 is how much the deepest UNet level shrinks the image (8 from the VAE x 8 from three stride-2 convs); "
    "the latent itself is 1/8 of the image.":
        "64 是 UNet 最深一层相对图像的缩小倍数（VAE 的 8 倍 x 三个步幅为 2 的卷积的 8 倍）；潜变量本身是图像的 1/8。",
    "PyTorch modules take a batch: (batch, 4, height/8, width/8).":
        "PyTorch 模块的输入带批量维度：(batch, 4, height/8, width/8)。",
    "320 is the width right after the UNet's first conv; its input, the latent, has 4 channels.":
        "320 是 UNet 第一个卷积之后的宽度；这个卷积的输入，也就是潜变量，只有 4 个通道。",
    "one pooled vector per prompt instead of 77 token vectors": "每个提示词一个池化向量，而不是 77 个词元向量",
    "token ids instead of token embeddings": "用了词元 id 而不是词元嵌入",
    "tokens and features transposed": "词元维与特征维颠倒",
    "SD v1 cross-attends to every token: CLIP's last hidden state, 77 vectors of 768 numbers, not one pooled "
    "sentence vector.":
        "SD v1 对每个词元做交叉注意力：用的是 CLIP 最后一层的隐藏状态，即 77 个 768 维的向量，而不是一个池化后的句向量。",
    "The tokenizer's 77 ids go through CLIP's text encoder first; the UNet receives 768 numbers per token.":
        "分词器给出的 77 个 id 要先经过 CLIP 的文本编码器；UNet 收到的是每个词元 768 个数。",
    "Sequences are (batch, tokens, features): (B, 77, 768).": "序列的形状是 (batch, tokens, features)：(B, 77, 768)。",
    "raw timesteps instead of the sinusoidal embedding": "用了原始时间步，而不是正弦嵌入",
    "the 1280-wide MLP output instead of the 320-wide sinusoidal embedding":
        "用了 1280 维的 MLP 输出，而不是 320 维的正弦嵌入",
    "only half of the embedding (160 instead of 320)": "只有一半的嵌入（160 维而不是 320 维）",
    "Diffusion.forward takes sinusoidal_embedding(t), shape (1 or B, 320), not the integer t itself (notebook 01 "
    "builds it).":
        "Diffusion.forward 接收的是 sinusoidal_embedding(t)，形状为 (1 或 B, 320)，而不是整数 t 本身（笔记本 01 会实现它）。",
    "Diffusion applies its own TimeEmbedding MLP (320 -> 1280); give it the 320-wide sinusoidal embedding.":
        "Diffusion 自带 TimeEmbedding MLP（320 -> 1280）；传给它 320 维的正弦嵌入即可。",
    "The embedding is 160 cosines AND 160 sines: 320 numbers.": "嵌入由 160 个余弦和 160 个正弦组成：共 320 个数。",
    "a random tensor instead of the embedding of t = 500": "用了随机张量，而不是 t = 500 的嵌入",
    "the embedding of another timestep": "用了另一个时间步的嵌入",
    "The shape is right but the numbers are noise: the UNet reads the timestep from these 320 numbers. Use "
    "sdcourse.sinusoidal_embedding(500).":
        "形状对了，但数值只是噪声：UNet 要从这 320 个数里读出时间步。请用 sdcourse.sinusoidal_embedding(500)。",
    "The exercise asks for t = 500: sdcourse.sinusoidal_embedding(500).":
        "练习要求的是 t = 500：sdcourse.sinusoidal_embedding(500)。",
    "sdcourse.sinusoidal_embedding puts the 160 cosines first, as SD v1 was trained.":
        "sdcourse.sinusoidal_embedding 把 160 个余弦放在前面，与 SD v1 训练时一致。",
    "Two facts from the table of the three inputs: how many channels the VAE latent has, and how much smaller "
    "than the image each of its sides is.":
        "从“三个输入”的表格里找两个事实：VAE 潜变量有几个通道，它的每条边比图像小多少倍。",
    "Shapes are ints: which Python operator divides and keeps an int?":
        "形状是整数：Python 里哪个运算符做完除法仍得到整数？",
    "Three tensors, in the table's order: the latent (your latent_shape), CLIP's context (tokens x features), "
    "and the time.":
        "三个张量，按表格中的顺序：潜变量（形状用你的 latent_shape）、CLIP 的上下文（词元 x 特征）和时间输入。",
    "The time is not the integer 500: it is 320 numbers. Which sdcourse function of section 4 makes them?":
        "时间输入不是整数 500，而是 320 个数。第 4 节里哪个 sdcourse 函数能生成它们？",
    "return the latent's shape for that image size, a tuple of 4 ints":
        "返回该图像尺寸对应的潜变量形状：由 4 个整数组成的 tuple",
    "return (latent, context, time): three tensors Diffusion accepts, the time being the embedding of t = 500":
        "返回 (latent, context, time)：Diffusion 能接收的三个张量，其中 time 是 t = 500 的嵌入",
    "time has the right shape but differs from sinusoidal_embedding(500) by {}.":
        "time 的形状正确，但与 sinusoidal_embedding(500) 的最大绝对误差为 {}.",  # ASCII "." : the key's "{}." stops at a decimal point
    "fn(batch, height, width) should return a tuple of 4 ints.": "fn(batch, height, width) 应返回由 4 个整数组成的 tuple。",
    "fn(batch, height, width) should return (latent, context, time).":
        "fn(batch, height, width) 应返回 (latent, context, time)。",
    "float sizes from / instead of //": "用了 / 而不是 //，尺寸成了浮点数",
    "It looks like: float sizes from / instead of //. Shapes are ints: height // 8 (integer division), not "
    "height / 8.":
        "看起来是：用了 / 而不是 //，尺寸成了浮点数。形状必须是整数：用 height // 8（整除），而不是 height / 8。",
    "Return a tuple such as (1, 4, 64, 64).": "请返回一个 tuple，例如 (1, 4, 64, 64)。",
    "latent_shape({}, {}, {}) returned {}.": "latent_shape({}, {}, {}) 返回了 {}.",  # ASCII ".": the key's "{}." stops at 64.0's point
    "latent_shape({}, {}, {}) returned a {}.": "latent_shape({}, {}, {}) 返回的是 {}。",
    "Return three tensors: latent, context, time.": "请返回三个张量：latent、context、time。",
    "unet_inputs({}, {}, {}) did not return a tuple of 3 tensors.":
        "unet_inputs({}, {}, {}) 返回的不是由 3 个张量组成的 tuple。",

    # --- nb01_time_embedding.py -----------------------------------------------------------------
    "sin and cos swapped": "sin 与 cos 顺序颠倒",
    "frequencies 10000^(-i/dim) instead of 10000^(-i/half)": "频率用了 10000^(-i/dim)，而不是 10000^(-i/half)",
    "frequencies 10000^(-i/(half-1)) instead of 10000^(-i/half)":
        "频率用了 10000^(-i/(half-1))，而不是 10000^(-i/half)",
    "sin and cos interleaved": "sin 与 cos 交错排列",
    "positive exponent": "指数取了正号",
    "SD v1 was trained with the cosines first: [cos | sin] (diffusers calls it flip_sin_to_cos=True). The first "
    "Linear layer's weights expect that order.":
        "SD v1 训练时余弦在前：[cos | sin]（diffusers 中称为 flip_sin_to_cos=True）。第一个 Linear 层的权重按这个顺序排列。",
    "The exponent is divided by half = dim/2 = 160, so that i = 0..159 spans frequencies 1 .. ~1/10000.":
        "指数要除以 half = dim/2 = 160，这样 i = 0..159 对应的频率才会覆盖 1 .. ~1/10000。",
    "That is the other convention (downscale_freq_shift=1). SD v1 divides by half exactly (freq_shift=0).":
        "那是另一种约定（downscale_freq_shift=1）。SD v1 除以的就是 half 本身（freq_shift=0）。",
    "Concatenate the blocks: first all 160 cosines, then all 160 sines (torch.cat([cos, sin], dim=-1)), not cos0, "
    "sin0, cos1, sin1, ...":
        "按块拼接：先是全部 160 个余弦，再是全部 160 个正弦（torch.cat([cos, sin], dim=-1)），"
        "而不是 cos0, sin0, cos1, sin1, ...",
    "The frequencies fall: 10000 ** (-i / half), from 1 down to ~1/10000.":
        "频率是递减的：10000 ** (-i / half)，从 1 降到约 1/10000。",
    "SiLU missing": "缺少 SiLU",
    "ReLU instead of SiLU": "用了 ReLU 而不是 SiLU",
    "GELU instead of SiLU": "用了 GELU 而不是 SiLU",
    "an extra SiLU after linear_2": "linear_2 之后多了一个 SiLU",
    "SiLU on the input instead of between the layers": "SiLU 作用在输入上，而不是两层之间",
    "Put F.silu between linear_1 and linear_2: Linear -> SiLU -> Linear.":
        "在 linear_1 和 linear_2 之间加上 F.silu：Linear -> SiLU -> Linear。",
    "SD uses SiLU (x * sigmoid(x)), smooth and non-zero for negative inputs: F.silu.":
        "SD 用的是 SiLU（x * sigmoid(x)），它处处平滑，输入为负时也不为零：F.silu。",
    "SD's time MLP uses SiLU (F.silu), not GELU.": "SD 的时间步嵌入 MLP 用的是 SiLU（F.silu），不是 GELU。",
    "The MLP ends with linear_2; each residual block applies its own SiLU to the time embedding before its "
    "linear_time.":
        "MLP 以 linear_2 结束；每个残差块会在自己的 linear_time 之前，再对时间步嵌入做一次 SiLU。",
    "The SiLU goes between linear_1 and linear_2.": "SiLU 应放在 linear_1 和 linear_2 之间。",
    "Sections 2.1, 2.2 and 2.3 are the three lines you need; replace 320 and 160 by dim and dim // 2.":
        "第 2.1、2.2、2.3 节正是你需要的三行；把其中的 320 和 160 换成 dim 和 dim // 2。",
    "t arrives as a (N,) tensor of ints: make it a float column before multiplying by the row of frequencies.":
        "t 传进来时是形状为 (N,) 的整数张量：先把它变成浮点数的列向量，再与频率行向量相乘。",
    "Which half comes first decides whether SD's weights read the right time: section 4.":
        "哪一半在前，决定了 SD 的权重能否读对时间步：见第 4 节。",
    "__init__ builds two nn.Linear layers, named exactly as in the notes (the check copies weights by name).":
        "__init__ 构建两个 nn.Linear 层，名字与笔记中完全一致（检查器按名字复制权重）。",
    "forward is the three lines of the step-by-step cell above, with self. in front of the layers.":
        "forward 就是上方分步单元格里的那三行，只是各层前面要加上 self.。",
    "build linear_1 and linear_2 with the notes' names; forward (N, n_embd) -> (N, 4 n_embd)":
        "用笔记中的名字构建 linear_1 和 linear_2；forward (N, n_embd) -> (N, 4 n_embd)",
    "t (N,) -> (N, dim): the sinusoidal embedding in SD v1's convention": "t (N,) -> (N, dim)：按 SD v1 约定的正弦嵌入",
    "module_cls(320) should build the module.": "module_cls(320) 应能构建出这个模块。",
    "Linear(320, 1280) -> SiLU -> Linear(1280, 1280), as in the cells above.":
        "Linear(320, 1280) -> SiLU -> Linear(1280, 1280)，与上方单元格相同。",
    "fn(t, dim) takes a (N,) tensor of timesteps and an even dim.":
        "fn(t, dim) 接收形状为 (N,) 的时间步张量和一个偶数 dim。",
    "Build it as in the cells above: freqs (half,), angles (N, half), cat([cos, sin]).":
        "照上方单元格的做法构建：freqs (half,)、angles (N, half)、cat([cos, sin])。",
    "forward takes a (N, 320) embedding.": "forward 接收形状为 (N, 320) 的嵌入。",

    # --- nb02_residual_block.py: GroupNorm -------------------------------------------------------
    "one group per channel (that is InstanceNorm)": "每个通道单独一组（那是 InstanceNorm）",
    "a single group for all channels (like LayerNorm)": "所有通道只分成一组（类似 LayerNorm）",
    "groups made of every G-th channel": "每隔 G 个通道取一个组成一组",
    "statistics shared across the batch": "统计量在整个批量上共享",
    "unbiased variance (divides by n - 1)": "用了无偏方差（除以 n - 1）",
    "eps added outside the square root": "eps 加在了平方根外面",
    "weight and bias not applied": "没有应用 weight 和 bias",
    "Split the C channels into num_groups groups of C // num_groups consecutive channels, and normalise each group "
    "as a whole.":
        "把 C 个通道分成 num_groups 组，每组是 C // num_groups 个相邻通道，再对每组整体做归一化。",
    "Use num_groups groups, not one: x.view(B, G, C // G, H, W).": "要分成 num_groups 组，而不是一组：x.view(B, G, C // G, H, W)。",
    "Groups are consecutive channels: reshape to (B, G, C // G, H, W), not (B, C // G, G, H, W). With the wrong "
    "order, channels 0, G, 2G, ... share statistics.":
        "每组是相邻的通道：reshape 成 (B, G, C // G, H, W)，而不是 (B, C // G, G, H, W)。"
        "顺序错了，通道 0, G, 2G, ... 就会共享统计量。",
    "GroupNorm never mixes samples: compute the mean and variance per sample and group (dims 2, 3, 4 of the "
    "(B, G, C//G, H, W) view), not over dim 0.":
        "GroupNorm 从不混合不同样本：按每个样本、每个组计算均值和方差（即 (B, G, C//G, H, W) 视图的第 2、3、4 维），"
        "不要沿第 0 维计算。",
    "torch.var divides by n - 1 by default; normalisation uses the plain mean of squares: var(..., unbiased=False) "
    "(or correction=0).":
        "torch.var 默认除以 n - 1；归一化用的是平方偏差的普通均值：var(..., unbiased=False)（或 correction=0）。",
    "Divide by sqrt(var + eps), not sqrt(var) + eps.": "除以 sqrt(var + eps)，而不是 sqrt(var) + eps。",
    "After normalising, scale and shift each channel: x * weight.view(1, C, 1, 1) + bias.view(1, C, 1, 1).":
        "归一化之后，对每个通道做缩放和平移：x * weight.view(1, C, 1, 1) + bias.view(1, C, 1, 1)。",
    "x (B, C, H, W) normalised in num_groups groups of channels, then weight and bias; by hand (F.group_norm is "
    "blocked)":
        "把 x (B, C, H, W) 的通道分成 num_groups 组做归一化，再乘 weight、加 bias；需手写（F.group_norm 已被禁用）",
    "fn(x, num_groups, weight, bias, eps) should return a tensor shaped like x.":
        "fn(x, num_groups, weight, bias, eps) 应返回与 x 形状相同的张量。",
    "Reshape (B, C, H, W) -> (B, G, C//G, H, W), normalise over the last three dims, reshape back, then apply "
    "weight and bias per channel.":
        "把 (B, C, H, W) reshape 成 (B, G, C//G, H, W)，在最后三个维度上归一化，再 reshape 回去，最后逐通道应用 weight 和 bias。",

    # --- nb02_residual_block.py: the time at every pixel ----------------------------------------
    "time added without unsqueeze": "time 没做 unsqueeze 就直接相加",
    "time reshaped to (B, 1, 1, C)": "time 被变形成了 (B, 1, 1, C)",
    "only the first sample's time used": "只用了第一个样本的 time",
    "time multiplied instead of added": "time 被乘上去而不是加上去",
    "PyTorch aligns shapes from the RIGHT: a (B, C) tensor lines up with the feature's last two axes (H, W), not "
    "with (B, C). Here H == B and W == C, so it even ran without an error. Make the time (B, C, 1, 1) first: "
    "time[:, :, None, None] or time.unsqueeze(-1).unsqueeze(-1).":
        "PyTorch 从右边开始对齐形状：(B, C) 张量对齐的是特征的最后两个轴 (H, W)，而不是 (B, C)。"
        "这里恰好 H == B、W == C，所以它甚至没有报错就运行了。请先把 time 变成 (B, C, 1, 1)："
        "time[:, :, None, None] 或 time.unsqueeze(-1).unsqueeze(-1)。",
    "The channel axis of the feature is axis 1: make the time (B, C, 1, 1), not (B, 1, 1, C).":
        "特征的通道轴是第 1 轴：把 time 变成 (B, C, 1, 1)，而不是 (B, 1, 1, C)。",
    "Keep the batch axis: each sample gets its own time vector, time[:, :, None, None].":
        "保留批量轴：每个样本有自己的时间向量，time[:, :, None, None]。",
    "The residual block ADDS the time vector to every pixel.": "残差块是把时间向量加到每个像素上，不是乘。",
    "return the feature with each sample's time vector added at every pixel":
        "返回 feature，并把每个样本的时间向量加到它的每个像素上",
    "Shapes: feature (B, C, H, W), time (B, C); make the time (B, C, 1, 1) before adding.":
        "形状：feature 为 (B, C, H, W)，time 为 (B, C)；相加之前先把 time 变成 (B, C, 1, 1)。",
    "feature + time[:, :, None, None]: (B, C, H, W) + (B, C, 1, 1).":
        "应为 feature + time[:, :, None, None]，即 (B, C, H, W) + (B, C, 1, 1)。",

    # --- nb02_residual_block.py: UNET_ResidualBlock ----------------------------------------------
    "residual forgotten": "漏掉了残差连接",
    "residual saved after the first GroupNorm": "残差在第一个 GroupNorm 之后才保存",
    "no SiLU on the time embedding": "时间步嵌入没有经过 SiLU",
    "SiLU after linear_time instead of before": "SiLU 放在了 linear_time 之后，而不是之前",
    "GroupNorm eps 1e-6 (residual blocks use 1e-5)": "GroupNorm 的 eps 用了 1e-6（残差块用 1e-5）",
    "no SiLU after the GroupNorms": "GroupNorm 之后没有 SiLU",
    "time added after the second conv": "time 在第二个卷积之后才相加",
    "groupnorm_feature and groupnorm_merged swapped": "groupnorm_feature 与 groupnorm_merged 颠倒",
    "no 1x1 conv on the residual when the channels change": "通道数改变时，残差上缺少 1x1 卷积",
    "a 1x1 conv on the residual although the channels are equal": "通道数相同，残差上却多了 1x1 卷积",
    "Return merged + self.residual_layer(residue): the block adds its input back.":
        "返回 merged + self.residual_layer(residue)：残差块要把输入加回去。",
    "Save residue = feature BEFORE anything touches it.": "在对 feature 做任何处理之前，先保存 residue = feature。",
    "Apply F.silu to the time embedding before linear_time.": "在 linear_time 之前对时间步嵌入应用 F.silu。",
    "The order is linear_time(F.silu(time)): SiLU first, then the projection to out_channels (as SD's checkpoints "
    "were trained).":
        "顺序是 linear_time(F.silu(time))：先 SiLU，再投影到 out_channels（SD 的检查点就是这样训练的）。",
    "The residual block's GroupNorms use PyTorch's default eps=1e-5; 1e-6 belongs to the attention block's "
    "GroupNorm.":
        "残差块的 GroupNorm 用 PyTorch 默认的 eps=1e-5；1e-6 是注意力块里的 GroupNorm 用的。",
    "Each GroupNorm is followed by F.silu, before its conv.": "每个 GroupNorm 之后、对应的卷积之前，都有一个 F.silu。",
    "Add the time vector between the two convs: to the output of conv_feature, before groupnorm_merged.":
        "在两个卷积之间加上时间向量：加到 conv_feature 的输出上，在 groupnorm_merged 之前。",
    "groupnorm_feature normalises the input, groupnorm_merged the sum of features and time.":
        "groupnorm_feature 归一化的是输入，groupnorm_merged 归一化的是特征与时间向量之和。",
    "When in_channels != out_channels the input cannot be added to the output: residual_layer = "
    "nn.Conv2d(in_channels, out_channels, kernel_size=1).":
        "当 in_channels != out_channels 时，输入无法直接加到输出上：residual_layer = "
        "nn.Conv2d(in_channels, out_channels, kernel_size=1)。",
    "When in_channels == out_channels, residual_layer = nn.Identity() (SD v1 has no weights there; real "
    "checkpoints would not load).":
        "当 in_channels == out_channels 时，residual_layer = nn.Identity()（SD v1 在这里没有权重；否则真实的检查点会加载失败）。",
    "build the layers with the notes' names in __init__ and write forward(feature (B, in, H, W), time (B, 1280)) "
    "-> (B, out, H, W)":
        "在 __init__ 中用笔记中的名字构建各层，并写出 forward(feature (B, in, H, W), time (B, 1280)) -> (B, out, H, W)",
    "module_cls(in_channels, out_channels) should build it.": "module_cls(in_channels, out_channels) 应能构建出这个模块。",
    "Compare your forward line by line with the cells above.": "请把你的 forward 与上方单元格逐行对照。",
    "If it is a shape error: is the time (B, out, 1, 1) before the addition, and does the residual go through "
    "residual_layer?":
        "如果是形状错误：相加之前 time 是否已经是 (B, out, 1, 1)？残差是否经过了 residual_layer？",

    # --- nb02_residual_block.py: counting parameters ---------------------------------------------
    "1x1 residual conv forgotten": "漏算了残差上的 1x1 卷积",
    "biases forgotten": "漏算了偏置",
    "GroupNorm weights and biases forgotten": "漏算了 GroupNorm 的 weight 和 bias",
    "1x1 residual conv counted also when the channels are equal": "通道数相同时也算上了残差上的 1x1 卷积",
    "3x3 kernels counted as 3 weights instead of 9": "3x3 卷积核按 3 个权重而不是 9 个计算",
    "When the channels change, residual_layer is a 1x1 conv: in*out weights + out biases.":
        "通道数改变时，residual_layer 是一个 1x1 卷积：in*out 个权重 + out 个偏置。",
    "Every Conv2d and Linear here has a bias: one per output channel.":
        "这里的每个 Conv2d 和 Linear 都有偏置：每个输出通道一个。",
    "Each GroupNorm has a weight and a bias per channel: 2*in + 2*out in all.":
        "每个 GroupNorm 的每个通道都有一个 weight 和一个 bias：合计 2*in + 2*out 个。",
    "With equal channels the residual is an Identity: no weights.": "通道数相同时，残差是 Identity：没有权重。",
    "A 3x3 conv has in*out*3*3 weights.": "一个 3x3 卷积有 in*out*3*3 个权重。",
    "return the parameter count from a formula, layer by layer": "用公式逐层算出参数量并返回",
    "fn(in_channels, out_channels, n_time) -> int.": "fn(in_channels, out_channels, n_time) 应返回一个整数。",
    "Count layer by layer: GroupNorm 2*C, Conv3x3 in*out*9 + out, Linear n_time*out + out.":
        "逐层计数：GroupNorm 2*C，Conv3x3 in*out*9 + out，Linear n_time*out + out。",

    # --- nb02_residual_block.py: hints -----------------------------------------------------------
    "Section 2 computes it step by step: a view that cuts the channels into groups, one mean and one variance per "
    "sample and group, then back to (B, C, H, W).":
        "第 2 节一步步算过：先用 view 把通道切成组，每个样本的每个组各算一个均值和一个方差，再变回 (B, C, H, W)。",
    "Which dims of the 5-D view belong to one group of one sample? And which variance divides by n?":
        "在 5 维视图中，哪几个维度属于同一样本的同一组？哪种方差是除以 n 的？",
    "The per-channel weight and bias come last; shape them so they line up with axis 1.":
        "逐通道的 weight 和 bias 放在最后；调整它们的形状，使其与第 1 轴对齐。",
    "Broadcasting aligns shapes from the right (section 3, 'The trap'): give the time two trailing axes of size 1.":
        "广播从右边开始对齐形状（第 3 节的“陷阱”）：给 time 在末尾加上两个大小为 1 的轴。",
    "__init__: six layers with the notes' names; the diagram of section 1 shows what each one maps to what.":
        "__init__：六个层，用笔记中的名字；第 1 节的示意图标出了每一层从什么映射到什么。",
    "forward: the four steps at the top of the notebook, in order. Keep the input aside before step 1.":
        "forward：按顺序执行笔记本开头列出的四个步骤。在第 1 步之前先把输入另存一份。",
    "The time goes through SiLU, then linear_time, then section 3's unsqueeze, and is added before the second "
    "GroupNorm.":
        "时间步嵌入先经过 SiLU，再经过 linear_time，然后做第 3 节的 unsqueeze，最后在第二个 GroupNorm 之前加上去。",
    "residual_layer depends on whether the channel count changes: section 4.":
        "residual_layer 取决于通道数是否改变：见第 4 节。",
    "Go through __init__ of UNET_ResidualBlock layer by layer: two GroupNorms, two 3x3 convs, one Linear, and "
    "maybe a 1x1 conv.":
        "逐层过一遍 UNET_ResidualBlock 的 __init__：两个 GroupNorm、两个 3x3 卷积、一个 Linear，可能还有一个 1x1 卷积。",
    "Every conv and Linear has one bias per output channel; a GroupNorm has a weight and a bias per channel.":
        "卷积和 Linear 的每个输出通道各有一个偏置；GroupNorm 的每个通道各有一个 weight 和一个 bias。",

    # --- nb03_attention.py ----------------------------------------------------------------------
    "Two steps: first cut each token's H * d_head features into H slices (a view that splits the last dimension), "
    "then move the head dimension next to the batch.":
        "分两步：先把每个词元的 H * d_head 个特征切成 H 份（用 view 拆分最后一个维度），再把头维度移到批量维度旁边。",
    "Print the shapes after each step; check that head 1 of token 0 is features d_head..2*d_head-1 of token 0.":
        "每一步之后打印形状；检查词元 0 的第 1 个头是否正好是词元 0 的第 d_head..2*d_head-1 个特征。",
    "The inverse of split_heads, steps in reverse order: bring the tokens back next to the batch, then join the "
    "last two dimensions. After a transpose, joining needs reshape (view raises).":
        "split_heads 的逆操作，步骤倒过来：先把词元维度移回批量维度旁边，再合并最后两个维度。"
        "转置之后要用 reshape 合并（view 会报错）。",
    "x (B, L, H*Dh) -> (B, H, L, Dh): each head gets its own Dh channels of every token":
        "x (B, L, H*Dh) -> (B, H, L, Dh)：每个头分到每个词元中属于自己的 Dh 个通道",
    "x (B, H, L, Dh) -> (B, L, H*Dh): the inverse of split_heads": "x (B, H, L, Dh) -> (B, L, H*Dh)：split_heads 的逆操作",
    "Expected x.view(B, L, n_heads, d_head).transpose(1, 2).": "应为 x.view(B, L, n_heads, d_head).transpose(1, 2)。",
    "Expected x.transpose(1, 2).reshape(B, L, n_heads * d_head).": "应为 x.transpose(1, 2).reshape(B, L, n_heads * d_head)。",
    "Scores: every query against every key, divided by sqrt of the LAST dimension of q (d_head).":
        "分数：每个查询与每个键做点积，再除以 q 最后一个维度（d_head）的平方根。",
    "Softmax along the keys: for each query, the weights over the keys sum to 1. Which dimension is that?":
        "沿键做 softmax：对每个查询，它在所有键上的权重之和为 1。那是哪个维度？",
    "Return a pair: (weights @ v, weights).": "返回一对值：(weights @ v, weights)。",
    "scaled dot-product attention": "缩放点积注意力",
    "return (output (B, H, Lq, Dh), weights (B, H, Lq, Lk)) of scaled dot-product attention, written by hand":
        "手写缩放点积注意力，返回 (output (B, H, Lq, Dh), weights (B, H, Lq, Lk))",
    "Got one {}, expected a pair (output, weights).": "只得到一个 {}，应返回一对值 (output, weights)。",
    "Expected softmax(q @ k.transpose(-1, -2) / sqrt(d_head), dim=-1) @ v.":
        "应为 softmax(q @ k.transpose(-1, -2) / sqrt(d_head), dim=-1) @ v。",
    "{}: output": "{}: 输出",  # a check's name + which of (output, weights) differs
    "{}: weights": "{}: 权重",
    "Expected the weights softmax(q @ k.transpose(-1, -2) / sqrt(d_head), dim=-1).":
        "权重应为 softmax(q @ k.transpose(-1, -2) / sqrt(d_head), dim=-1)。",
    "{} (output and weights)": "{}（输出与权重）",
    "{} (output and attention weights)": "{}（输出与注意力权重）",
    "[wrong] {}: It looks like: {}. {}": "[wrong] {}: 看起来是：{}。{}",
    "__init__: in_proj (d_embed -> 3 d_embed, bias=in_proj_bias) and out_proj (d_embed -> d_embed); keep "
    "self.observer = None.":
        "__init__：in_proj（d_embed -> 3 d_embed，bias=in_proj_bias）和 out_proj（d_embed -> d_embed）；"
        "保留 self.observer = None。",
    "forward: in_proj, chunk(3), split heads, scores / sqrt(d_head), softmax over the keys, hand the weights to "
    "self.observer when it is set, weights @ v, merge heads, out_proj.":
        "forward：in_proj，chunk(3)，拆分注意力头，scores / sqrt(d_head)，沿键做 softmax，"
        "设置了 self.observer 时把权重交给它，weights @ v，合并注意力头，out_proj。",
    "Compare with sections 2.1-2.5 above: the same lines, inside a class.":
        "对照上面的第 2.1-2.5 节：同样的几行代码，只是放进了类里。",
    "Like SelfAttention, but three projections: q_proj reads x (d_embed wide), k_proj and v_proj read the context "
    "y (d_cross wide); all three without bias.":
        "与 SelfAttention 类似，但有三个投影：q_proj 读 x（宽 d_embed），k_proj 和 v_proj 读上下文 y（宽 d_cross）；"
        "三者都不带偏置。",
    "The weights are (B, H, Lq, Lk): one row per image token, one column per context token.":
        "权重的形状是 (B, H, Lq, Lk)：每个图像词元一行，每个上下文词元一列。",
    "build in_proj and out_proj in __init__; write forward by hand (no F.scaled_dot_product_attention), handing "
    "the weights to self.observer":
        "在 __init__ 中构建 in_proj 和 out_proj；手写 forward（不用 F.scaled_dot_product_attention），并把权重交给 self.observer",
    "build q_proj, k_proj, v_proj (no bias) and out_proj; write forward(x, y) by hand, handing the weights to "
    "self.observer":
        "构建 q_proj、k_proj、v_proj（无偏置）和 out_proj；手写 forward(x, y)，并把权重交给 self.observer",
    "forward computes the attention by hand (F.scaled_dot_product_attention is blocked here).":
        "forward 要手写注意力计算（这里禁用了 F.scaled_dot_product_attention）。",
    "The output is right, but the module never gave its weights to observer(module, weights).":
        "输出是对的，但模块从未把权重交给 observer(module, weights)。",
    "observer(self, weights) should receive the (B, H, Lq, Lk) softmax weights.":
        "observer(self, weights) 应收到形状为 (B, H, Lq, Lk) 的 softmax 权重。",

    # --- nb04_attention_block.py ----------------------------------------------------------------
    "Two steps: join H and W into one dimension (they are adjacent in memory, so a view works), then swap the "
    "channel and pixel dimensions.":
        "分两步：先把 H 和 W 合并成一个维度（它们在内存中相邻，所以 view 可行），再交换通道维和像素维。",
    "Test on the small integer tensor of section 2: token 4 must be [11, 111].":
        "用第 2 节的小整数张量测试：词元 4 必须是 [11, 111]。",
    "The same two steps in reverse: swap back to (B, C, H*W), then split H*W into (H, W).":
        "同样的两步倒过来：先换回 (B, C, H*W)，再把 H*W 拆成 (H, W)。",
    "image -> sequence": "图像 -> 序列",
    "sequence -> image": "序列 -> 图像",
    "Expected x.view(B, C, H * W).transpose(1, 2).": "应为 x.view(B, C, H * W).transpose(1, 2)。",
    "Expected seq.transpose(1, 2).reshape(B, C, H, W).": "应为 seq.transpose(1, 2).reshape(B, C, H, W)。",
    "{}: {}-attention weights": "{}: 注意力权重（{}-attention）",
    "x (B, C, H, W) -> (B, H*W, C): one token per pixel, row after row":
        "x (B, C, H, W) -> (B, H*W, C)：每个像素一个词元，逐行排列",
    "seq (B, H*W, C) -> (B, C, H, W): the inverse of image_to_sequence":
        "seq (B, H*W, C) -> (B, C, H, W)：image_to_sequence 的逆操作",
    "linear_geglu_1 made 2 x 4C numbers per token: split the last dimension into two equal halves.":
        "linear_geglu_1 为每个词元生成了 2 x 4C 个数：把最后一个维度平分成两半。",
    "Which half is the value and which the gate? The notes write `x, gate = ...`. Which GELU: the exact one.":
        "哪一半是值，哪一半是门控？笔记里写的是 `x, gate = ...`。用哪种 GELU：精确的那种。",
    "h (..., 2D) -> (..., D): one half, gated by the GELU of the other half":
        "h (..., 2D) -> (..., D)：一半作为值，由另一半的 GELU 门控",
    "Expected x, gate = h.chunk(2, dim=-1); x * F.gelu(gate).": "应为 x, gate = h.chunk(2, dim=-1); x * F.gelu(gate)。",
    "__init__: the notes' eleven layers in order; GroupNorm with eps=1e-6; the attention layers are sdcourse's "
    "SelfAttention(n_head, channels) and CrossAttention(n_head, channels, d_context) (q/k/v without bias).":
        "__init__：按顺序构建笔记中的十一个层；GroupNorm 用 eps=1e-6；注意力层用 sdcourse 的 "
        "SelfAttention(n_head, channels) 和 CrossAttention(n_head, channels, d_context)（q/k/v 不带偏置）。",
    "forward: keep residue_long; groupnorm, conv_input; image -> sequence; three times LayerNorm + layer + short "
    "residual (self-attention, cross-attention with the context, GeGLU); sequence -> image; conv_output + "
    "residue_long.":
        "forward：保存 residue_long；groupnorm、conv_input；图像 -> 序列；三次“LayerNorm + 层 + 短残差连接”"
        "（自注意力、与上下文的交叉注意力、GeGLU）；序列 -> 图像；conv_output + residue_long。",
    "Section 3 above runs every line of it with shapes.": "上面第 3 节逐行运行过它，并打印了每一步的形状。",
    "build the notes' layers in __init__ (GroupNorm eps 1e-6) and write forward: norm, conv, image -> sequence, "
    "self-attn, cross-attn, GeGLU (each with a residual), back, conv + residual":
        "在 __init__ 中构建笔记里的各层（GroupNorm eps 1e-6），并写出 forward：归一化、卷积、图像 -> 序列、"
        "自注意力、交叉注意力、GeGLU（各带一个残差连接）、变回图像、卷积 + 残差",
    "attention_{} handed over {} sets of weights, expected 1: use sdcourse's attention layers (they call their "
    "observer).":
        "attention_{} 交出了 {} 组权重，应为 1 组：请使用 sdcourse 的注意力层（它们会调用自己的 observer）。",
    "The attention layers should see the tokens of section 3.": "注意力层应当看到第 3 节中的那些词元。",

    # --- nb05_unet.py ---------------------------------------------------------------------------
    "Write down what each encoder step pushes (12 channel counts) and what each decoder step gives.":
        "写下每个编码器步骤压入栈的输出（12 个通道数），以及每个解码器步骤给出的输出。",
    "Decoder i receives what came from below (the bottleneck for i = 0) plus the skip it pops: the last one "
    "pushed.":
        "解码器 i 接收从下方传来的输出（i = 0 时来自瓶颈层），再加上它弹出的跳跃连接：也就是最后压入的那个。",
    "return the 12 decoder input channels: current + popped skip, from the stack":
        "返回 12 个解码器的输入通道数：当前通道数 + 从栈中弹出的跳跃连接的通道数",
    "decoder channels": "解码器通道数",
    "decoder channels for channels={}": "解码器通道数，channels={}",  # {} takes the rest of the line: keep it last
    "Decoder i receives what decoder i-1 gave (the bottleneck for i=0) plus the output of encoder 11-i.":
        "解码器 i 接收解码器 i-1 的输出（i=0 时为瓶颈层的输出），再加上编码器 11-i 的输出。",
    "channel counts as floats": "通道数成了浮点数",
    "It looks like: channel counts as floats. Got {}: channel counts are ints; use + and //, never /.":
        "看起来是：通道数成了浮点数。得到的是 {}：通道数应为整数；只用 + 和 //，不要用 /。",
    "Every pixel is copied twice along the width, then every row twice along the height.":
        "每个像素先沿宽度复制成两个，再把每一行沿高度复制成两行。",
    "Which torch function repeats each element in place (a a b b), not the whole tensor (a b a b)?":
        "哪个 torch 函数会把每个元素紧挨着重复（a a b b），而不是重复整个张量（a b a b）？",
    "copy every pixel into a 2x2 block (no F.interpolate): (B, C, H, W) -> (B, C, 2H, 2W)":
        "把每个像素复制成一个 2x2 的块（不用 F.interpolate）：(B, C, H, W) -> (B, C, 2H, 2W)",
    "nearest upsampling": "最近邻上采样",
    "Every pixel becomes a 2x2 block of copies.": "每个像素被复制成一个 2x2 的块。",
    "__init__: one layer, self.conv, a 3x3 conv that keeps the channels (padding 1 keeps the size).":
        "__init__：只有一层 self.conv，一个不改变通道数的 3x3 卷积（padding 1 使尺寸不变）。",
    "forward: double the pixels first (your upsample_nearest), then the conv.":
        "forward：先把像素放大两倍（用你的 upsample_nearest），再做卷积。",
    "build the conv in __init__; forward: (B, C, H, W) -> (B, C, 2H, 2W), nearest by hand, then the conv":
        "在 __init__ 中构建卷积；forward：(B, C, H, W) -> (B, C, 2H, 2W)，先手写最近邻上采样，再做卷积",
    "Expected self.conv(nearest x2 of x).": "应为先对 x 做 2 倍最近邻上采样，再接 self.conv。",
    "Loop over the layers (`for layer in self`); ask each its type with isinstance.":
        "遍历各层（`for layer in self`）；用 isinstance 判断每一层的类型。",
    "Attention blocks take (x, context), residual blocks (x, time), everything else (x) alone. Return after the "
    "loop.":
        "注意力块接收 (x, context)，残差块接收 (x, time)，其他层只接收 (x)。循环结束之后再 return。",
    "forward(x, context, time): run each layer with the inputs its kind needs; return x":
        "forward(x, context, time)：按每层的类型传入它所需的输入来运行；返回 x",
    "Attention blocks take (x, context), residual blocks (x, time), the rest (x).":
        "注意力块接收 (x, context)，残差块接收 (x, time)，其余层接收 (x)。",
    "__init__: the notes' 12 encoder steps, the bottleneck and 12 decoder steps, each a SwitchSequential; the "
    "widths come from config.channels (c1, c2, c3).":
        "__init__：笔记中的 12 个编码器步骤、瓶颈层和 12 个解码器步骤，每个都是一个 SwitchSequential；"
        "各层宽度来自 config.channels (c1, c2, c3)。",
    "forward: push every encoder output onto a list; run the bottleneck; each decoder step concatenates (x, the "
    "LAST skip pushed) along the channels before its layers.":
        "forward：把每个编码器的输出压入一个列表；运行瓶颈层；每个解码器步骤在运行自己的层之前，"
        "先把 x 与最后压入的跳跃连接沿通道拼接（x 在前）。",
    "build encoders, bottleneck, decoders from the config; forward: the encoders leave skips, the decoders take "
    "them back":
        "按 config 构建 encoders（编码器）、bottleneck（瓶颈层）、decoders（解码器）；forward：编码器留下跳跃连接，解码器再把它们取回",
    "If torch.cat failed on sizes: the decoders pop the LAST skip pushed (skip_connections.pop()).":
        "如果 torch.cat 因尺寸不符而出错：解码器应弹出最后压入的跳跃连接（skip_connections.pop()）。",
    "Decoder 0 received encoder 0's output.": "解码器 0 收到的是编码器 0 的输出。",
    "Start from UNET.forward. The only change is inside the decoder steps: run their layers one by one.":
        "从 UNET.forward 出发。唯一的改动在解码器步骤内部：逐个运行其中的层。",
    "An Upsample must not double blindly: it resizes to the spatial size of the skip that the NEXT decoder step "
    "will pop (it is on top of the stack once this step has popped its own).":
        "Upsample 不能盲目地放大两倍：它要缩放到下一个解码器步骤将弹出的跳跃连接的空间尺寸"
        "（本步骤弹出自己的跳跃连接之后，那一个就在栈顶）。",
    "Resize with F.interpolate(x, size=..., mode='nearest'), then apply the Upsample's own conv.":
        "用 F.interpolate(x, size=..., mode='nearest') 缩放，再应用 Upsample 自己的卷积。",
    "UNET.forward for any latent size, as diffusers' UNet runs it (12x20, 9x13, ...)":
        "适用于任意潜变量尺寸的 UNET.forward，与 diffusers 的 UNet 运行方式一致（12x20、9x13 等）",
    "UNET forward at a {} x {} latent": "UNET 在 {} x {} 潜变量上的前向计算",
    "If torch.cat failed on sizes: resize each Upsample's input to the size of the skip on top of the stack "
    "(skip_connections[-1].shape[-2:]).":
        "如果 torch.cat 因尺寸不符而出错：把每个 Upsample 的输入缩放到栈顶跳跃连接的尺寸（skip_connections[-1].shape[-2:]）。",
    "Compare with UNET.forward: only the Upsample steps change.": "对照 UNET.forward：只有 Upsample 这几步需要改。",
    "UNET forward at latents {} == diffusers": "UNET 在潜变量 {} 上的前向计算 == diffusers",
    '[todo] {}: {}': '[todo] {}: {}',
    '[hint] {}: {}': '[hint] {}: {}',
}
