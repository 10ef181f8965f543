"""Chinese of the checker messages of notebooks 06-11 (sdcourse/checks/nb06_diffusion.py ...
nb11_text_to_image.py): mistake names, advice, [todo] lines, hints. Merged into messages_zh.py.

Mistake names are short noun phrases: they are embedded in "It looks like: {}. {}" (看起来是：{}。{}).
A value must not contain its own key (the checkers translate a finished line twice), and a key
that starts or ends with `{}` keeps that value first or last in the Chinese.
"""

MESSAGES = {
    # --- nb06_diffusion.py: the output layer ------------------------------------------------------
    "no SiLU": "缺少 SiLU",
    "SiLU before the GroupNorm": "SiLU 放在了 GroupNorm 之前",
    "no GroupNorm": "缺少 GroupNorm",
    "GroupNorm eps 1e-6 instead of the default 1e-5": "GroupNorm 的 eps 用了 1e-6，而不是默认的 1e-5",
    "GroupNorm, then SiLU, then the conv: F.silu(x) between the two.":
        "先 GroupNorm，再 SiLU，最后卷积：在两者之间加上 F.silu(x)。",
    "Normalise first, then the activation: groupnorm -> silu -> conv.":
        "先归一化，再激活：groupnorm -> silu -> conv。",
    "SD uses SiLU (x * sigmoid(x)) everywhere, here too: F.silu.":
        "SD 处处都用 SiLU（x * sigmoid(x)），这里也一样：F.silu。",
    "Start with self.groupnorm(x): the decoder's features are not normalised.":
        "先做 self.groupnorm(x)：解码器输出的特征还没有归一化。",
    "nn.GroupNorm(32, in_channels) keeps the default eps = 1e-5 here (only the attention block's first GroupNorm uses 1e-6).":
        "这里的 nn.GroupNorm(32, in_channels) 保留默认的 eps = 1e-5（只有注意力块的第一个 GroupNorm 用 1e-6）。",
    "write __init__ (groupnorm, conv) and forward: GroupNorm -> SiLU -> 3x3 conv.":
        "编写 __init__（groupnorm、conv）和 forward：GroupNorm -> SiLU -> 3x3 卷积。",
    "self.conv(F.silu(self.groupnorm(x))), with conv = nn.Conv2d(in, out, 3, padding=1).":
        "self.conv(F.silu(self.groupnorm(x)))，其中 conv = nn.Conv2d(in, out, 3, padding=1)。",
    "forward(x) with x (B, 64, H, W) should return (B, 4, H, W).":
        "forward(x) 的输入 x 为 (B, 64, H, W)，应返回 (B, 4, H, W)。",
    "Three layers in the order of the notes' class: normalise, activate, convolve.":
        "按笔记中这个类的顺序写三层：归一化、激活、卷积。",
    "The conv keeps the size: kernel_size=3 with padding=1; only the channels change (in -> out).":
        "卷积不改变尺寸：kernel_size=3，padding=1；只有通道数变化（in -> out）。",

    # --- nb06_diffusion.py: Diffusion -----------------------------------------------------------
    "the time embedding skipped (the UNET got the raw sinusoidal embedding)":
        "跳过了时间步嵌入（UNET 收到的是原始的正弦嵌入）",
    "context and time swapped in the call to the UNET": "调用 UNET 时 context 与 time 顺序颠倒",
    "the output layer forgotten": "漏掉了输出层",
    "the UNET skipped": "跳过了 UNET",
    "the time embedding applied twice": "时间步嵌入用了两次",
    "First time = self.time_embedding(time): (1, 320) -> (1, 1280); the UNET's residual blocks expect 1280.":
        "先算 time = self.time_embedding(time)：(1, 320) -> (1, 1280)；UNET 的残差块需要 1280 维的输入。",
    "The UNET's forward is unet(latent, context, time).": "UNET 的 forward 是 unet(latent, context, time)。",
    "The UNET ends with 320 channels; self.final turns them into the latent's 4.":
        "UNET 最后输出 320 个通道；self.final 把它们变成潜变量的 4 个通道。",
    "latent -> self.unet(latent, context, time) -> self.final(...): the UNET does the work.":
        "latent -> self.unet(latent, context, time) -> self.final(...)：主要的计算由 UNET 完成。",
    "Apply self.time_embedding once, in Diffusion.forward only.":
        "self.time_embedding 只调用一次，而且只在 Diffusion.forward 中调用。",
    "write __init__ (time_embedding, unet, final from the config) and the three lines of forward.":
        "编写 __init__（用 config 构建 time_embedding、unet、final）和 forward 的三行代码。",
    "forward(latent, context, time): time_embedding(time), then unet(latent, context, time), then final(...).":
        "forward(latent, context, time)：先 time_embedding(time)，再 unet(latent, context, time)，最后 final(...)。",
    "Build the three parts from the config: the sinusoidal width is config.n_time_embd, the UNET's last width is config.channels[0].":
        "用 config 构建三个部分：正弦嵌入的宽度是 config.n_time_embd，UNET 最后的宽度是 config.channels[0]。",
    "forward is three lines; the time goes through the MLP before the UNET sees it.":
        "forward 只有三行；时间步先经过 MLP，再交给 UNET。",

    # --- nb06_diffusion.py: forward noising ------------------------------------------------------
    "alpha_bar without the square roots": "alpha_bar 没有开平方根",
    "sqrt(alpha_bar) on both terms": "两项都乘了 sqrt(alpha_bar)",
    "the two coefficients swapped": "两个系数颠倒",
    "no square root on the noise coefficient": "噪声系数没有开平方根",
    "x_t from x0, noise and alpha_bar: a sample of q(x_t | x_0).":
        "由 x0、noise 和 alpha_bar 得到 x_t：q(x_t | x_0) 的一个样本。",
    "fn(x0, noise, alpha_bar) with a float alpha_bar.": "fn(x0, noise, alpha_bar)，其中 alpha_bar 是浮点数。",
    "x_t = sqrt(alpha_bar) * x0 + sqrt(1 - alpha_bar) * noise: the squares of the two coefficients add up to 1, so the variance stays 1.":
        "x_t = sqrt(alpha_bar) * x0 + sqrt(1 - alpha_bar) * noise：两个系数的平方和为 1，所以方差保持为 1。",
    "Two terms: a share of the image and a share of the noise.": "两项：一部分图像，加上一部分噪声。",
    "Their variances add up: (share of x0)^2 + (share of noise)^2 = 1.":
        "两者的方差相加：(x0 的系数)^2 + (噪声的系数)^2 = 1。",

    # --- nb06_diffusion.py: one DDPM step --------------------------------------------------------
    "no noise added (the mean only)": "没有加噪声（只返回了均值）",
    "std = sqrt(beta') instead of the posterior's": "std 用了 sqrt(beta')，而不是后验的标准差",
    "the two coefficients of the mean swapped": "均值的两个系数颠倒",
    "x_t used where x0_hat belongs": "该用 x0_hat 的地方用了 x_t",
    "alpha' = 1 - abar_t instead of abar_t / abar_prev": "alpha' 取了 1 - abar_t，而不是 abar_t / abar_prev",
    "DDPM samples: return mean + std * z, with the z you are given.":
        "DDPM 要采样：返回 mean + std * z，z 用传进来的那个。",
    "The posterior's variance is (1 - abar_prev) / (1 - abar_t) * beta', a little smaller than beta' itself.":
        "后验的方差是 (1 - abar_prev) / (1 - abar_t) * beta'，比 beta' 本身略小。",
    "sqrt(abar_prev) * beta' / (1 - abar_t) multiplies x0_hat; sqrt(alpha') * (1 - abar_prev) / (1 - abar_t) multiplies x_t.":
        "sqrt(abar_prev) * beta' / (1 - abar_t) 乘的是 x0_hat；sqrt(alpha') * (1 - abar_prev) / (1 - abar_t) 乘的是 x_t。",
    "First x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), then the mean.":
        "先算 x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)，再算均值。",
    "alpha' is the signal kept in the jump prev -> t: abar_t / abar_prev; beta' = 1 - alpha'.":
        "alpha' 是从 prev 跳到 t 时保留下来的信号：abar_t / abar_prev；beta' = 1 - alpha'。",
    "one DDPM step: x_prev from x_t, the predicted noise and the fresh noise z.":
        "一步 DDPM：由 x_t、预测的噪声和新采样的噪声 z 得到 x_prev。",
    "fn(x_t, eps, alpha_bar_t, alpha_bar_prev, z) with float alpha_bars.":
        "fn(x_t, eps, alpha_bar_t, alpha_bar_prev, z)，两个 alpha_bar 都是浮点数。",
    "Start like every sampler: solve the forward formula for x0_hat.":
        "和所有采样器一样，先从前向过程的公式中解出 x0_hat。",
    "Then alpha' = abar_t / abar_prev and beta' = 1 - alpha' (the jump from prev to t), and the formulas above the cell.":
        "然后 alpha' = abar_t / abar_prev，beta' = 1 - alpha'（从 prev 到 t 的一跳），再套用单元格上方的公式。",

    # --- nb06_diffusion.py: one DDIM step --------------------------------------------------------
    "x0_hat without dividing by sqrt(alpha_bar_t)": "x0_hat 没有除以 sqrt(alpha_bar_t)",
    "alpha_bar_t and alpha_bar_prev swapped": "alpha_bar_t 与 alpha_bar_prev 颠倒",
    "the noise not put back (x0_hat only)": "没有把噪声加回去（只返回了 x0_hat）",
    "one deterministic DDIM step: x_prev from x_t and the predicted noise.":
        "一步确定性的 DDIM：由 x_t 和预测的噪声得到 x_prev。",
    "fn(x_t, eps, alpha_bar_t, alpha_bar_prev) with floats.":
        "fn(x_t, eps, alpha_bar_t, alpha_bar_prev)，两个 alpha_bar 都是浮点数。",
    "First estimate the clean image x0_hat from x_t and eps, then re-noise it to the level of prev.":
        "先由 x_t 和 eps 估计出干净图像 x0_hat，再把它重新加噪到 prev 的噪声水平。",
    "abar_t (noisier, smaller) is for x0_hat; abar_prev (larger) for the result.":
        "abar_t（噪声更多，值更小）用于求 x0_hat；abar_prev（值更大）用于求结果。",
    "DDIM puts the predicted noise back at the lower level: + sqrt(1 - abar_prev) * eps.":
        "DDIM 按较低的噪声水平把预测的噪声加回去：+ sqrt(1 - abar_prev) * eps。",
    "Every coefficient is a square root: sqrt(abar), sqrt(1 - abar).": "每个系数都是平方根：sqrt(abar)、sqrt(1 - abar)。",
    "x0_hat first; then put it back at abar_prev's noise level with the SAME eps.":
        "先算 x0_hat；再用同一个 eps 把它放回 abar_prev 对应的噪声水平。",

    # --- nb06_diffusion.py: classifier-free guidance ---------------------------------------------
    "halves read as [cond, uncond]": "把两半当成了 [cond, uncond]",
    "cond + scale * (cond - uncond)": "起点用了 cond 而不是 uncond",
    "scale * cond only": "只算了 scale * cond",
    "the scale ignored (cond only)": "忽略了 scale（只用了 cond）",
    "eps_both holds the [uncond, cond] predictions: return the guided noise (B, C, H, W).":
        "eps_both 含有 [uncond, cond] 两组预测：返回引导后的噪声 (B, C, H, W)。",
    "fn(eps_both, scale); eps_both holds [uncond, cond] along the batch.":
        "fn(eps_both, scale)；eps_both 沿批量维依次存放 [uncond, cond]。",
    "This course (like diffusers' pipelines) puts the unconditional half FIRST: eps_uncond, eps_cond = eps_both.chunk(2).":
        "本课程（和 diffusers 的 pipeline 一样）把无条件的那一半放在前面：eps_uncond, eps_cond = eps_both.chunk(2)。",
    "Start from the unconditional prediction: uncond + scale * (cond - uncond).":
        "从无条件预测出发：uncond + scale * (cond - uncond)。",
    "Guidance extrapolates from uncond towards cond: uncond + scale * (cond - uncond).":
        "引导是从 uncond 朝 cond 的方向外推：uncond + scale * (cond - uncond)。",
    "Multiply the difference (cond - uncond) by the scale and add it to uncond.":
        "把差值 (cond - uncond) 乘以 scale，再加到 uncond 上。",
    "eps_both.chunk(2) splits the batch in two halves; which one is the empty prompt?":
        "eps_both.chunk(2) 把批量分成两半；哪一半对应空提示词？",
    "Start at the unconditional prediction and move `scale` times the difference towards the conditional one.":
        "从无条件预测出发，朝有条件预测的方向移动 `scale` 倍的差值。",

    # --- nb07_training.py: the training loss ------------------------------------------------------
    "no loss weights (plain MSE)": "没有乘损失权重（普通的 MSE）",
    "the MSE taken against x0 instead of the noise": "MSE 的目标用了 x0，而不是噪声",
    "the model saw the clean x0 (no noise added)": "模型看到的是干净的 x0（没有加噪）",
    "the network's raw output (v) compared with the noise": "拿网络的原始输出（v）与噪声比较",
    "squared error summed, not averaged": "平方误差求了和，而不是取平均",
    "Multiply each image's MSE by loss_weight(model, t) before the mean.":
        "取平均之前，把每张图像的 MSE 乘以 loss_weight(model, t)。",
    "The target is the noise that was added: (predicted - noise).": "目标是加进去的噪声：(predicted - noise)。",
    "Noise the latents first: x_t = model.schedule.add_noise(x0, noise, t).":
        "先给潜变量加噪：x_t = model.schedule.add_noise(x0, noise, t)。",
    "This model's UNet outputs v; model.predict_noise(x_t, context, t) turns it into the noise it implies.":
        "这个模型的 UNet 输出的是 v；model.predict_noise(x_t, context, t) 把它换算成对应的噪声。",
    "Average over channels and pixels: .pow(2).mean(dim=(1, 2, 3)), then the weighted mean over the batch.":
        "先在通道和像素上取平均：.pow(2).mean(dim=(1, 2, 3))，再在批量上取加权平均。",
    "the weighted noise-prediction loss of a batch: a scalar tensor that can be backpropagated.":
        "一个批量的加权噪声预测损失：一个可以反向传播的标量张量。",
    "fn(model, x0, ids, t, noise) returns a scalar tensor.": "fn(model, x0, ids, t, noise) 应返回一个标量张量。",
    "the loss detached from the graph": "损失脱离了计算图",
    "It looks like: the loss detached from the graph. Keep it a tensor (no .item(), no torch.no_grad()): backward() needs its graph.":
        "看起来是：损失脱离了计算图。让它保持为张量（不要 .item()，也不要 torch.no_grad()）：backward() 需要它的计算图。",
    "x_t = add_noise, context = text_encoder(ids), predicted = predict_noise(x_t, context, t), ((predicted - noise)^2 per image * loss_weight).mean().":
        "x_t = add_noise，context = text_encoder(ids)，predicted = predict_noise(x_t, context, t)，"
        "((predicted - noise)^2 的逐图像均值 * loss_weight).mean()。",
    "Four steps: noise the latents, encode the captions, predict the noise, compare.":
        "四步：给潜变量加噪、编码图像描述、预测噪声、比较。",
    "model.predict_noise already turns the UNet's v into the noise; the MSE is per image, then weighted.":
        "model.predict_noise 已经把 UNet 输出的 v 换算成了噪声；MSE 按每张图像计算，再加权。",

    # --- nb07_training.py: one training step ------------------------------------------------------
    "optimizer.zero_grad() forgotten (last step's gradients added)": "忘了 optimizer.zero_grad()（累加了上一步的梯度）",
    "no gradient clipping": "没有做梯度裁剪",
    "optimizer.step() with no gradients (before backward, or after a second zero_grad)":
        "在没有梯度时调用了 optimizer.step()（在 backward 之前，或在第二次 zero_grad 之后）",
    "the loss returned as a tensor": "返回的损失是张量",
    "PyTorch ADDS new gradients to .grad: clear them with optimizer.zero_grad() before loss.backward().":
        "PyTorch 会把新梯度累加到 .grad 上（而不是覆盖）：在 loss.backward() 之前用 optimizer.zero_grad() 清零。",
    "The order is zero_grad, backward, clip, step: step uses the gradients that backward has just computed.":
        "顺序是 zero_grad、backward、clip、step：step 用的是 backward 刚算出的梯度。",
    "Return loss.item(), a Python float: a tensor keeps the whole graph of the step alive.":
        "返回 loss.item()，即 Python 浮点数：返回张量会让这一步的整个计算图一直留在内存中。",
    "one optimisation step of the model on a batch; return the loss as a float.":
        "在一个批量上对模型做一步优化；以浮点数返回损失。",
    "fn(model, optimizer, batch) returns the loss as a float.": "fn(model, optimizer, batch) 应以浮点数返回损失。",
    "The parameters are right but it returned {}, expected the batch's loss {} (loss.item()).":
        "参数正确，但返回值是 {}，应为该批量的损失 {}（loss.item()）。",
    "zero_grad, backward, clip_grad_norm_(..., 1.0), step, in this order.":
        "按 zero_grad、backward、clip_grad_norm_(..., 1.0)、step 的顺序。",
    "Five lines in a fixed order; PyTorch accumulates gradients until you clear them.":
        "五行代码，顺序固定；在你清零之前，PyTorch 会一直累加梯度。",
    "The Trainer of sdcourse.train does the same in train_step: read it if you are stuck.":
        "sdcourse.train 的 Trainer 在 train_step 里做的是同样的事：卡住了就去读一读。",

    # --- nb07_training.py: space-to-depth and the localisation score ------------------------------
    "offsets (dy, dx) swapped": "偏移 (dy, dx) 顺序颠倒",
    "channel last in the channel order": "颜色通道在通道编号中排到了最后",
    "a plain reshape without permute": "只用了 reshape，没有 permute",
    "(B, C, H, W) -> (B, C p^2, H/p, W/p), by hand (pixel_unshuffle is blocked).":
        "(B, C, H, W) -> (B, C p^2, H/p, W/p)，手写实现（pixel_unshuffle 已被禁用）。",
    "fn(images, p) with images (B, C, H, W).": "fn(images, p)，其中 images 的形状为 (B, C, H, W)。",
    "Within a cell, the row offset dy comes before the column offset dx: permute(0, 1, 3, 5, 2, 4).":
        "在一个格子内，行偏移 dy 排在列偏移 dx 之前：permute(0, 1, 3, 5, 2, 4)。",
    "The colour channel is the slowest index: c * p^2 + dy * p + dx.":
        "颜色通道是变化最慢的索引：c * p^2 + dy * p + dx。",
    "A reshape alone mixes pixels of different cells: first view (B, C, H/p, p, W/p, p), then move the two offsets next to the channel with permute.":
        "只用 reshape 会把不同格子的像素混在一起：先 view 成 (B, C, H/p, p, W/p, p)，再用 permute 把两个偏移移到通道旁边。",
    "Split each side into (cell, offset) with view, then move the offsets next to the channel.":
        "用 view 把每条边拆成 (格子, 偏移)，再把偏移移到通道旁边。",
    "not divided by the area share": "没有除以面积占比",
    "mass inside not normalised by the total mass": "掩码内的总量没有除以整张图的总量",
    "cells counted as inside when the object touches them at all": "物体只要碰到格子，就把整个格子算作在掩码内",
    "token_map (g, g), mask (S, S) -> how many times its fair share of the map's mass lies in the mask (a float).":
        "token_map (g, g)、mask (S, S) -> 注意力图落在掩码内的总量是其应得份额的多少倍（一个浮点数）。",
    "fn(token_map, mask) returns a float.": "fn(token_map, mask) 应返回一个浮点数。",
    "Divide by mask.float().mean(): a big object gets a lot of mass by chance.":
        "除以 mask.float().mean()：大物体单凭面积大就能分到很多总量。",
    "Divide the mass inside by token_map.sum(): a share, between 0 and 1.":
        "把掩码内的总量除以 token_map.sum()：得到 0 到 1 之间的份额。",
    "Weigh each cell by the fraction the object covers (average pooling), not 0 or 1.":
        "按物体覆盖每个格子的比例（平均池化）给格子加权，而不是只取 0 或 1。",
    "Average-pool the mask to the map's grid: each cell gets the fraction the object covers.":
        "把掩码平均池化到注意力图的网格上：每个格子得到物体覆盖它的比例。",

    # --- nb08_weights.py: renaming one attention block --------------------------------------------
    "q, k, v fused in another order": "q、k、v 按别的顺序拼接",
    "q, k, v stacked along dim 1": "q、k、v 沿 dim 1 拼接",
    "self- and cross-attention swapped (attn1 <-> attn2)": "自注意力与交叉注意力颠倒（attn1 <-> attn2）",
    "norm2 and norm3 swapped": "norm2 与 norm3 颠倒",
    "the two GeGLU linears swapped": "GeGLU 的两个线性层颠倒",
    "q, k, v of the self-attention not fused": "自注意力的 q、k、v 没有合并",
    "in_proj.weight = cat([to_q, to_k, to_v], dim=0): q first, then k, then v (the notes' SelfAttention splits in_proj(x) with chunk(3) in that order).":
        "in_proj.weight = cat([to_q, to_k, to_v], dim=0)：先 q，再 k，最后 v（笔记中的 SelfAttention 正是按这个顺序用 chunk(3) 拆分 in_proj(x)）。",
    "Stack the rows: torch.cat([...], dim=0) gives (3C, C); dim=1 gives (C, 3C).":
        "按行堆叠：torch.cat([...], dim=0) 得到 (3C, C)；dim=1 得到的是 (C, 3C)。",
    "attn1 is the self-attention (attention_1, fused in_proj); attn2 the cross-attention (attention_2, separate q/k/v).":
        "attn1 是自注意力（attention_1，合并成一个 in_proj）；attn2 是交叉注意力（attention_2，q/k/v 分开）。",
    "norm1, norm2, norm3 come before self-attention, cross-attention and the GeGLU: layernorm_1, layernorm_2, layernorm_3.":
        "norm1、norm2、norm3 分别位于自注意力、交叉注意力和 GeGLU 之前：即 layernorm_1、layernorm_2、layernorm_3。",
    "ff.net.0.proj is the first GeGLU linear (C -> 8C: value and gate), ff.net.2 the second.":
        "ff.net.0.proj 是 GeGLU 的第一个线性层（C -> 8C：值和门控），ff.net.2 是第二个。",
    "The notes' SelfAttention has ONE in_proj: build it from to_q, to_k, to_v.":
        "笔记中的 SelfAttention 只有一个 in_proj：用 to_q、to_k、to_v 拼出它。",
    "map each diffusers name of the block to the notes' name (a dict), and fuse attn1's to_q, to_k, to_v into attention_1.in_proj.":
        "把这个块里每个 diffusers 名字映射到笔记中的名字（一个字典），并把 attn1 的 to_q、to_k、to_v 合并成 attention_1.in_proj。",
    "fn(state) takes {{diffusers key: tensor}} and returns {{notes key: tensor}}.":
        "fn(state) 接收 {{diffusers 的键: 张量}}，返回 {{笔记中的键: 张量}}。",
    "Return a dict {{notes key: tensor}}, got {}.": "应返回字典 {{笔记中的键: 张量}}，实际得到 {}。",
    "Missing notes keys: {}; keys that are not the notes': {}.": "缺少笔记中的键：{}；不属于笔记的键：{}。",
    "The keys are right, but these hold the wrong tensor: {}.": "键都对，但这些键对应的张量不对：{}。",
    "Compare with sdcourse.weights.tables.ATTENTION_NAMES.": "请与 sdcourse.weights.tables.ATTENTION_NAMES 对照。",
    "Write a dict from the diffusers module names to the notes' (norm -> groupnorm, proj_in -> conv_input, ...); keep the .weight / .bias ending.":
        "写一个字典，把 diffusers 的模块名映射到笔记中的名字（norm -> groupnorm，proj_in -> conv_input，...）；保留 .weight / .bias 后缀。",
    "attn1 is the self-attention: collect its to_q, to_k, to_v and concatenate them (q first) into one in_proj.":
        "attn1 是自注意力：取出它的 to_q、to_k、to_v，按 q 在前的顺序拼接成一个 in_proj。",
    "print(sdcourse.UNET_AttentionBlock(4, 8, 16, 8).state_dict().keys()) lists the names you must produce.":
        "print(sdcourse.UNET_AttentionBlock(4, 8, 16, 8).state_dict().keys()) 会列出你要生成的全部名字。",

    # --- nb09_vae.py: the diagonal Gaussian -------------------------------------------------------
    "std = exp(logvar): that is the variance, std = exp(0.5 * logvar)": "std = exp(logvar)：那是方差，std = exp(0.5 * logvar)",
    "logvar not clamped to [-30, 20]": "logvar 没有截断到 [-30, 20]",
    "mean and logvar swapped (the first 4 channels are the means)": "mean 与 logvar 颠倒（前 4 个通道是均值）",
    "split along the batch axis (dim 0) instead of the channels (dim 1)": "沿批量维（dim 0）拆分，而不是沿通道维（dim 1）",
    "sample = mean + var * noise (the variance instead of the std)": "sample = mean + var * noise（用了方差而不是标准差）",
    "uniform noise (torch.rand) instead of normal noise (torch.randn)": "用了均匀噪声（torch.rand），而不是正态噪声（torch.randn）",
    "sample returns the mean (no noise)": "sample 返回的是均值（没有噪声）",
    "the generator is not used (two samples with the same seed differ)": "没有使用 generator（同一随机种子的两次采样结果不同）",
    "mode draws a sample (the mode of a Gaussian is its mean)": "mode 做了采样（高斯分布的众数就是均值）",
    "logvar is log(std^2), so std = exp(0.5 * logvar) and var = exp(logvar).":
        "logvar 是 log(std^2)，所以 std = exp(0.5 * logvar)，var = exp(logvar)。",
    "self.logvar = logvar.clamp(-30.0, 20.0) before std and var: keeps exp() finite for wild encoder outputs.":
        "在计算 std 和 var 之前先 self.logvar = logvar.clamp(-30.0, 20.0)：即使编码器输出异常，exp() 也保持有限。",
    "mean, logvar = parameters.chunk(2, dim=1): the means come first.": "mean, logvar = parameters.chunk(2, dim=1)：均值在前。",
    "The 8 channels are (4 means, 4 log-variances): chunk(2, dim=1).": "8 个通道是（4 个均值，4 个对数方差）：chunk(2, dim=1)。",
    "A Normal(mean, std^2) sample is mean + std * noise, noise ~ Normal(0, 1).":
        "Normal(mean, std^2) 的样本是 mean + std * noise，其中 noise ~ Normal(0, 1)。",
    "torch.randn draws Normal(0, 1) noise; torch.rand draws uniform [0, 1) noise.":
        "torch.randn 采样 Normal(0, 1) 噪声；torch.rand 采样 [0, 1) 上的均匀噪声。",
    "sample() adds std * noise to the mean; mode() is the one that returns the mean.":
        "sample() 在均值上加 std * noise；返回均值的是 mode()。",
    "Pass it on: torch.randn(shape, generator=generator, dtype=..., device=...).":
        "把它传下去：torch.randn(shape, generator=generator, dtype=..., device=...)。",
    "mode() returns self.mean: a Gaussian is most likely at its mean.": "mode() 返回 self.mean：高斯分布在均值处概率密度最大。",
    "the latent distribution from the encoder's (B, 8, h, w) output: mean, logvar, std, var, sample(generator), mode()":
        "由编码器的 (B, 8, h, w) 输出得到的潜变量分布：mean、logvar、std、var、sample(generator)、mode()",
    "{} should be a torch.Tensor, got {}.": "{} 应为 torch.Tensor，实际得到 {}。",
    "Two calls of mode() differ.": "两次调用 mode() 的结果不同。",
    "Compared in order: mean, logvar, log(std), (sample - mean) / std, mode.":
        "依次比较：mean、logvar、log(std)、(sample - mean) / std、mode。",
    ".var should be exp(logvar) (the clamped logvar).": ".var 应为 exp(logvar)（用截断后的 logvar）。",
    "__init__: split the 8 channels into two halves along dim 1 (torch.chunk); clamp the second half; std and var follow from logvar = log(std^2).":
        "__init__：沿 dim 1 把 8 个通道分成两半（torch.chunk）；截断后一半；std 和 var 由 logvar = log(std^2) 推出。",
    "sample: the reparameterisation trick, mean + std * a standard normal draw of the mean's shape (pass the generator on). mode: the most likely value of a Gaussian.":
        "sample：重参数化技巧，mean + std * 一个与 mean 同形状的标准正态样本（把 generator 传下去）。mode：高斯分布最可能的取值。",

    # --- nb09_vae.py: the asymmetric Downsample ---------------------------------------------------
    "padding on the left and top: (1, 1, 1, 1), (1, 0, 1, 0) or padding=1 (on even sizes all three are the same): same shape, windows one pixel up and left":
        "在左侧和上方填充：(1, 1, 1, 1)、(1, 0, 1, 0) 或 padding=1（尺寸为偶数时三者结果相同）：形状不变，但窗口向左上偏了一个像素",
    "reflect/replicate padding instead of zeros": "用了 reflect/replicate 填充，而不是零填充",
    "no padding: a stride-2 3x3 conv on 8 gives 3, not 4": "没有填充：步幅为 2 的 3x3 卷积作用在尺寸 8 上得到 3，而不是 4",
    "F.pad's tuple read as (top, bottom, left, right): (0, 0, 1, 1) pads the height only":
        "把 F.pad 的元组当成了 (top, bottom, left, right)：(0, 0, 1, 1) 只填充了高度",
    "padded twice: F.pad(x, (0, 1, 0, 1)) and padding=1 in the conv": "填充了两次：F.pad(x, (0, 1, 0, 1)) 加上卷积的 padding=1",
    "Pad one zero row and column on the right and bottom only: F.pad(x, (0, 1, 0, 1)), conv with padding=0. The shape is the same either way; the windows are not.":
        "只在右侧和下方各补一行、一列零：F.pad(x, (0, 1, 0, 1))，卷积用 padding=0。两种写法形状相同，但窗口位置不同。",
    "Zeros: F.pad(x, (0, 1, 0, 1)) (mode='constant', value=0, the defaults).":
        "用零填充：F.pad(x, (0, 1, 0, 1))（mode='constant'、value=0，即默认值）。",
    "Pad one zero row and column first: F.pad(x, (0, 1, 0, 1)).": "先补一行、一列零：F.pad(x, (0, 1, 0, 1))。",
    "F.pad's tuple starts with the LAST axis: (left, right, top, bottom) = (0, 1, 0, 1).":
        "F.pad 的元组从最后一个轴开始：(left, right, top, bottom) = (0, 1, 0, 1)。",
    "The conv itself has padding=0; F.pad does all the padding.": "卷积本身用 padding=0；填充全部由 F.pad 完成。",
    "a stride-2 3x3 conv that halves H and W, padded the way CompVis pads":
        "步幅为 2 的 3x3 卷积，把 H 和 W 减半，按 CompVis 的方式填充",
    "the output": "输出",
    "__init__: one nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=0), named conv.":
        "__init__：一个 nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=0)，命名为 conv。",
    "forward: F.pad takes (left, right, top, bottom) for the last two axes; CompVis adds one zero row and column at the end of each axis only (right and bottom).":
        "forward：F.pad 对最后两个轴按 (left, right, top, bottom) 取参数；CompVis 只在每个轴的末端（右侧和下方）补一行、一列零。",

    # --- nb09_vae.py: the VAE's attention block ---------------------------------------------------
    "scores divided by C instead of sqrt(C)": "分数除以了 C，而不是 sqrt(C)",
    "softmax over the queries (each key's column sums to 1) instead of over the keys":
        "softmax 作用在查询上（每个键的那一列和为 1），而不是作用在键上",
    "residual forgotten (x + ... at the end)": "忘了残差连接（最后的 x + ...）",
    "residual taken after the GroupNorm (norm(x) + ...) instead of x + ...":
        "残差取自 GroupNorm 之后（norm(x) + ...），而不是 x + ...",
    "GroupNorm eps 1e-5 (the UNet's residual blocks) instead of the VAE's 1e-6":
        "GroupNorm 的 eps 用了 1e-5（UNet 残差块的值），而不是 VAE 的 1e-6",
    "Divide the scores q k^T by sqrt(C) before the softmax (one head: its width is C).":
        "在 softmax 之前把分数 q k^T 除以 sqrt(C)（只有一个头：头的宽度就是 C）。",
    "The scale is 1/sqrt(C), not 1/C.": "缩放因子是 1/sqrt(C)，不是 1/C。",
    "scores[b, i, j] = q_i . k_j: softmax over j, the keys (the last axis), so each query's weights sum to 1.":
        "scores[b, i, j] = q_i . k_j：softmax 作用在 j 上，也就是键（最后一个轴），这样每个查询的权重之和为 1。",
    "The block returns x + proj_out(attention): add the input back.": "这个块返回 x + proj_out(attention)：要把输入加回来。",
    "Keep the input before the GroupNorm and add THAT back: x + proj_out(...).":
        "保留 GroupNorm 之前的输入，加回来的是它：x + proj_out(...)。",
    "The whole VAE uses GroupNorm(n_groups, C, eps=1e-6), as CompVis' Normalize.":
        "整个 VAE 都用 GroupNorm(n_groups, C, eps=1e-6)，与 CompVis 的 Normalize 一致。",
    "the VAE's one-head attention over pixels: norm, q/k/v/proj_out 1x1 convs, a residual":
        "VAE 在像素上的单头注意力：norm，q/k/v/proj_out 四个 1x1 卷积，再加一个残差连接",
    "Expected x + proj_out(v @ softmax(q^T k / sqrt(C), over the keys)).":
        "应为 x + proj_out(v @ softmax(q^T k / sqrt(C)))，softmax 在键上做。",
    "__init__: norm (GroupNorm with the VAE's eps), then q, k, v and proj_out: four 1x1 convs C -> C.":
        "__init__：norm（用 VAE 的 eps 的 GroupNorm），然后是 q、k、v 和 proj_out：四个 C -> C 的 1x1 卷积。",
    "forward: every pixel is a token of width C, one head. Flatten (H, W), scores = q^T k scaled by the head width, softmax over the keys, weighted sum of v, back to (B, C, H, W), proj_out, then the residual.":
        "forward：每个像素是一个宽度为 C 的词元，只有一个头。展平 (H, W)，scores = q^T k 并按头的宽度缩放，"
        "在键上做 softmax，对 v 加权求和，变回 (B, C, H, W)，经过 proj_out，最后加上残差。",

    # --- nb09_vae.py: the latent scale ------------------------------------------------------------
    "pixels in [0, 1] sent to the encoder as they are (it expects [-1, 1]: x * 2 - 1)":
        "[0, 1] 范围的像素原样送进了编码器（编码器需要 [-1, 1]：x * 2 - 1）",
    "divided by 0.18215 instead of multiplied (that is the decoder's side)": "除以了 0.18215，而不是乘（除法属于解码器那一侧）",
    "the latent scale 0.18215 forgotten": "忘了潜变量的缩放因子 0.18215",
    "the latent scale applied twice": "潜变量的缩放因子乘了两次",
    "a random sample instead of the mean (two calls give different latents)": "用了随机样本而不是均值（两次调用得到的潜变量不同）",
    "Map the pixels first: images * 2 - 1.": "先映射像素范围：images * 2 - 1。",
    "Into the UNet: z * 0.18215. Out of it, before decode: latents / 0.18215.":
        "送入 UNet 时：z * 0.18215；从 UNet 出来、解码之前：latents / 0.18215。",
    "The UNet was trained on z * vae.scaling_factor: multiply.": "UNet 是在 z * vae.scaling_factor 上训练的：要乘。",
    "Multiply once.": "只乘一次。",
    "Take vae.encode(x).mean (or .mode()): this exercise asks for the deterministic latent.":
        "取 vae.encode(x).mean（或 .mode()）：这个练习要的是确定性的潜变量。",
    "images (B, 3, H, W) in [0, 1] -> the latents the UNet was trained on, (B, 4, H/8, W/8)":
        "取值在 [0, 1] 的 images (B, 3, H, W) -> UNet 训练时所用的潜变量 (B, 4, H/8, W/8)",
    "the latents": "潜变量",
    "Three steps: the pixel range the VAE was trained on, the encoder's mean, the factor the UNet was trained with (vae.scaling_factor).":
        "三步：VAE 训练时的像素范围、编码器输出的均值、UNet 训练时用的缩放因子（vae.scaling_factor）。",
    "Which way does the factor go on the way INTO the UNet: does it make the latents smaller or larger?":
        "送入 UNet 时，这个因子该怎么用：它让潜变量变小还是变大？",

    # --- nb10_text_encoder.py: the causal mask ----------------------------------------------------
    "mask over the wrong triangle (token i sees the later tokens)": "掩码用错了三角（词元 i 能看到后面的词元）",
    "diagonal left out (a token cannot see itself)": "漏掉了对角线（词元看不到自己）",
    "True where blocked instead of where allowed": "在禁止处为 True，而不是在允许处为 True",
    "not a bool mask": "不是布尔掩码",
    "Token i may look at tokens 0..i: True on and BELOW the diagonal, j <= i (torch.tril).":
        "词元 i 可以看词元 0..i：对角线及其下方为 True，即 j <= i（torch.tril）。",
    "Keep the diagonal: token i may look at itself (row 0 would otherwise see nothing and its softmax would give NaN).":
        "保留对角线：词元 i 可以看它自己（否则第 0 行什么也看不到，它的 softmax 会得到 NaN）。",
    "Return True where attention is ALLOWED (the lower triangle); the attention then fills the scores at ~mask with -inf.":
        "在允许注意的位置（下三角）返回 True；注意力随后会把 ~mask 处的分数填成 -inf。",
    "Return a bool tensor (dtype=torch.bool): masked_fill(~mask, -inf) needs one.":
        "返回布尔张量（dtype=torch.bool）：masked_fill(~mask, -inf) 需要它。",
    "return the (L, L) bool mask, True where key j <= query i (the lower triangle)":
        "返回 (L, L) 的布尔掩码，在键 j <= 查询 i 处（下三角）为 True",
    "an additive 0/-inf mask": "加性的 0/-inf 掩码",
    "Row i is the query token i, column j the key token j. Which j may token i read while the text is read left to right?":
        "第 i 行是查询词元 i，第 j 列是键词元 j。文本从左往右读时，词元 i 可以读哪些 j？",
    "torch.ones(L, L, dtype=torch.bool) and one of torch.tril / torch.triu; mind the diagonal.":
        "torch.ones(L, L, dtype=torch.bool)，再配上 torch.tril / torch.triu 之一；注意对角线。",

    # --- nb10_text_encoder.py: quick-GELU ---------------------------------------------------------
    "exact GELU instead of quick-GELU": "用了精确 GELU，而不是 quick-GELU",
    "tanh-approximate GELU instead of quick-GELU": "用了 tanh 近似的 GELU，而不是 quick-GELU",
    "x * sigmoid(x) (SiLU): the 1.702 is missing": "x * sigmoid(x)（SiLU）：漏掉了 1.702",
    "sigmoid(1.702 x) without the factor x": "sigmoid(1.702 x) 没有乘以 x",
    "CLIP ViT-L/14 uses quick-GELU, x * sigmoid(1.702 x), not F.gelu: the weights were trained with it.":
        "CLIP ViT-L/14 用的是 quick-GELU，即 x * sigmoid(1.702 x)，而不是 F.gelu：权重就是用它训练出来的。",
    "Not the tanh formula: quick-GELU is x * sigmoid(1.702 x).": "不是 tanh 公式：quick-GELU 是 x * sigmoid(1.702 x)。",
    "Multiply inside the sigmoid by 1.702: x * sigmoid(1.702 * x).": "在 sigmoid 内部乘以 1.702：x * sigmoid(1.702 * x)。",
    "The sigmoid is a gate: multiply it by x.": "sigmoid 是一个门控：要把它乘以 x。",
    "CLIP's quick-GELU activation, elementwise, any shape": "CLIP 的 quick-GELU 激活函数，逐元素计算，任意形状",
    "One line: the input times a sigmoid of the input scaled by a constant.": "一行代码：输入乘以 sigmoid(常数 * 输入)。",
    "The constant makes sigmoid(c x) close to the normal CDF: look at the plot above.":
        "这个常数让 sigmoid(c x) 接近正态分布的 CDF：看看上面的图。",

    # --- nb10_text_encoder.py: the embeddings -----------------------------------------------------
    "positions not added": "没有加位置嵌入",
    "position embedding looked up with the token ids": "用词元 id 查了位置嵌入",
    "token embedding scaled by sqrt(d) (the 2017 Transformer does, CLIP does not)":
        "词元嵌入乘了 sqrt(d)（2017 年的 Transformer 这样做，CLIP 不这样做）",
    "Add the learned position vectors: position_embedding.weight[:L] (one per position 0..L-1).":
        "加上学到的位置向量：position_embedding.weight[:L]（位置 0..L-1 各一个）。",
    "Positions are 0, 1, ..., L-1, whatever the tokens: index the position table with torch.arange(L), not with input_ids.":
        "无论词元是什么，位置都是 0, 1, ..., L-1：用 torch.arange(L) 而不是 input_ids 去索引位置表。",
    "CLIP adds token and position vectors as they are, with no sqrt(d) factor.":
        "CLIP 把词元向量和位置向量直接相加，不乘 sqrt(d)。",
    "token_embedding and position_embedding tables; forward adds the token vectors and the first L position vectors":
        "token_embedding 和 position_embedding 两张表；forward 把词元向量与前 L 个位置向量相加",
    "__init__: two nn.Embedding tables, token_embedding (vocab_size rows) and position_embedding (n_positions rows), both n_embd wide.":
        "__init__：两张 nn.Embedding 表，token_embedding（vocab_size 行）和 position_embedding（n_positions 行），宽度都是 n_embd。",
    "forward: look the ids up in the token table; the positions are 0..L-1 (L = input_ids.shape[1], which can be less than n_positions); add the two.":
        "forward：在词元表中查 id；位置是 0..L-1（L = input_ids.shape[1]，可以小于 n_positions）；把两者相加。",

    # --- nb10_text_encoder.py: one CLIP layer -----------------------------------------------------
    "post-LN instead of pre-LN": "用了 post-LN，而不是 pre-LN",
    "forgot the residual around the attention": "忘了注意力外面的残差连接",
    "forgot the residual around the MLP": "忘了 MLP 外面的残差连接",
    "layer_norm1 used twice (layer_norm2 never used)": "layer_norm1 用了两次（layer_norm2 没有用到）",
    "attention without the causal mask": "注意力没有用因果掩码",
    "CLIP is pre-LN: x = x + self_attn(layer_norm1(x)); x = x + mlp(layer_norm2(x)). The LayerNorm comes before each sublayer, inside the residual branch, not after the sum.":
        "CLIP 是 pre-LN：x = x + self_attn(layer_norm1(x))；x = x + mlp(layer_norm2(x))。"
        "LayerNorm 位于每个子层之前、残差分支之内，而不是在相加之后。",
    "x = x + self_attn(layer_norm1(x)): add the layer's input back.": "x = x + self_attn(layer_norm1(x))：把这一层的输入加回来。",
    "x = x + mlp(layer_norm2(x)): add the MLP's input back.": "x = x + mlp(layer_norm2(x))：把 MLP 的输入加回来。",
    "Each sublayer has its own LayerNorm: layer_norm1 before the attention, layer_norm2 before the MLP.":
        "每个子层有自己的 LayerNorm：注意力之前是 layer_norm1，MLP 之前是 layer_norm2。",
    "CLIP's text attention is causal: scores.masked_fill(~causal_mask(L), -inf) before the softmax (sdcourse's CLIPAttention does it for you).":
        "CLIP 的文本注意力是因果的：在 softmax 之前做 scores.masked_fill(~causal_mask(L), -inf)（sdcourse 的 CLIPAttention 已经替你做了）。",
    "build layer_norm1, self_attn, layer_norm2, mlp; forward: the pre-LayerNorm layer with its two residuals":
        "构建 layer_norm1、self_attn、layer_norm2、mlp；forward：带两个残差连接的 pre-LayerNorm 层",
    "Expected x = x + self_attn(layer_norm1(x)); return x + mlp(layer_norm2(x)).":
        "应为 x = x + self_attn(layer_norm1(x))；return x + mlp(layer_norm2(x))。",
    "__init__: layer_norm1, self_attn (sdcourse's CLIPAttention(n_head, n_embd)), layer_norm2, mlp (the MLP class above); LayerNorm eps from config.layer_norm_eps.":
        "__init__：layer_norm1、self_attn（sdcourse 的 CLIPAttention(n_head, n_embd)）、layer_norm2、mlp（上面的 MLP 类）；"
        "LayerNorm 的 eps 取自 config.layer_norm_eps。",
    "forward: two residual steps. In each, normalise a copy of x, run the sublayer on it, and add the result to x. Which comes first: the norm or the sum?":
        "forward：两个残差步骤。每一步先对 x 的副本做归一化，送进子层，再把结果加到 x 上。哪个在前：归一化还是相加？",

    # --- nb10_text_encoder.py: padding and truncation to 77 ---------------------------------------
    "padded with id 0 instead of <|endoftext|>": "用 id 0 而不是 <|endoftext|> 填充",
    "padding put before the prompt": "填充放在了提示词前面",
    "a long prompt cut after adding <|endoftext|> (the end token lost)": "长提示词在加上 <|endoftext|> 之后才截断（结束词元丢失）",
    "SD v1's tokenizer pads with its end token <|endoftext|> (eos_id). Id 0 is '!' in CLIP's vocabulary: SD 2.x's pad token, not SD v1's.":
        "SD v1 的分词器用它的结束词元 <|endoftext|>（eos_id）填充。id 0 在 CLIP 词表中是 '!'：那是 SD 2.x 的填充词元，不是 SD v1 的。",
    "CLIP pads on the right: start token, the prompt, end token, then the padding.":
        "CLIP 在右侧填充：起始词元、提示词、结束词元，然后是填充。",
    "Cut the prompt's own tokens to length - 2 first, then add the start and end tokens: every row ends its text with <|endoftext|>.":
        "先把提示词本身的词元截断到 length - 2 个，再加上起始和结束词元：每一行的文本都以 <|endoftext|> 结尾。",
    "Every row starts with <|startoftext|> (bos_id), then the prompt's tokens.":
        "每一行都以 <|startoftext|>（bos_id）开头，然后是提示词的词元。",
    "start token, at most length - 2 of the prompt's tokens, end token, then padding up to length: a long tensor":
        "起始词元、最多 length - 2 个提示词词元、结束词元，然后填充到 length：一个 long 张量",
    "Token ids must be integers (torch.long), got {}: torch.tensor(list_of_ints) gives torch.long.":
        "词元 id 必须是整数（torch.long），实际得到 {}：torch.tensor(list_of_ints) 得到的就是 torch.long。",
    "Expected [bos] + ids[:length - 2] + [eos], padded with eos to `length`.":
        "应为 [bos] + ids[:length - 2] + [eos]，再用 eos 填充到 `length`。",
    "Three parts: the start token, the prompt's tokens (at most length - 2 of them), the end token; then fill up to `length`.":
        "三部分：起始词元、提示词的词元（最多 length - 2 个）、结束词元；然后填充到 `length`。",
    "Which token fills the rest in SD v1? Print tokenize(tokenizer, 'a cat')[0] above and look.":
        "在 SD v1 中用哪个词元填充剩余位置？在上面打印 tokenize(tokenizer, 'a cat')[0] 看看。",

    # --- nb11_text_to_image.py: the guided context ------------------------------------------------
    "halves in the order [cond, uncond]": "两半的顺序成了 [cond, uncond]",
    "zeros as the unconditional context (SD v1 uses the embedding of the empty prompt)":
        "用全零作为无条件上下文（SD v1 用的是空提示词的嵌入）",
    "the prompt in both halves (guidance then does nothing)": "两半都是提示词（这样引导不起任何作用）",
    "The course (and diffusers) put the empty prompt FIRST: torch.cat([uncond, cond]).":
        "本课程（和 diffusers 一样）把空提示词放在前面：torch.cat([uncond, cond])。",
    "Encode the empty prompt: text_encoder(tokenize(tokenizer, [''] * len(prompts))).":
        "对空提示词编码：text_encoder(tokenize(tokenizer, [''] * len(prompts)))。",
    "The first half is the empty prompt '' (one per prompt), not the prompt again.":
        "前一半是空提示词 ''（每个提示词对应一个），而不是再放一遍提示词。",
    "the (2B, 77, 768) context for guidance, in the course's [uncond, cond] order.":
        "用于引导的 (2B, 77, 768) 上下文，按本课程的 [uncond, cond] 顺序排列。",
    "fn(text_encoder, tokenizer, prompts) with prompts a list of strings.":
        "fn(text_encoder, tokenizer, prompts)，其中 prompts 是字符串列表。",
    "Two calls of the text encoder (prompts, then [''] * B), joined along the batch.":
        "调用两次文本编码器（先用 prompts，再用 [''] * B），沿批量维拼接。",
    "The UNet sees one batch: the first half steers towards 'anything', the second towards the prompt.":
        "UNet 看到的是一个批量：前一半引向“任意内容”，后一半引向提示词。",
    "What does diffusers encode when you give no negative prompt?": "不给负向提示词时，diffusers 编码的是什么？",

    # --- nb11_text_to_image.py: decode ------------------------------------------------------------
    "latents not divided by 0.18215": "潜变量没有除以 0.18215",
    "latents multiplied by 0.18215 instead of divided": "潜变量乘了 0.18215，而不是除以它",
    "the decoder's [-1, 1] not mapped to [0, 1]": "解码器输出的 [-1, 1] 没有映射到 [0, 1]",
    "no clamp to [0, 1]": "没有截断到 [0, 1]",
    "The UNet works on z * 0.18215: divide by vae.scaling_factor before vae.decode.":
        "UNet 处理的是 z * 0.18215：在 vae.decode 之前除以 vae.scaling_factor。",
    "Undo the scale: latents / vae.scaling_factor (it was multiplied in on the way in).":
        "撤销缩放：latents / vae.scaling_factor（编码时乘上去的）。",
    "vae.decode gives about [-1, 1]: images / 2 + 0.5, then clamp.": "vae.decode 的输出大约在 [-1, 1]：images / 2 + 0.5，再截断。",
    "The decoder overshoots a little: .clamp(0, 1) after mapping to [0, 1].":
        "解码器的输出会略微越界：映射到 [0, 1] 之后再 .clamp(0, 1)。",
    "latents (B, 4, h, w) -> images (B, 3, 8h, 8w) in [0, 1].": "latents (B, 4, h, w) -> 取值在 [0, 1] 的 images (B, 3, 8h, 8w)。",
    "fn(vae, latents) -> images (B, 3, 8h, 8w).": "fn(vae, latents) -> images，形状为 (B, 3, 8h, 8w)。",
    "Three things happened on the way in (pixels -> [-1, 1], encode, scale): undo them in reverse.":
        "编码时做了三件事（像素 -> [-1, 1]、编码、缩放）：按相反的顺序逐一撤销。",

    # --- nb11_text_to_image.py: the guided sampling loop ------------------------------------------
    "guidance computed as cond + scale * (uncond - cond) (halves swapped)": "引导算成了 cond + scale * (uncond - cond)（两半颠倒）",
    "guidance ignored (the conditional prediction only)": "忽略了引导（只用了有条件预测）",
    "prev_t = t - 1 instead of the next timestep of the list": "prev_t 取了 t - 1，而不是列表中的下一个时间步",
    "last step to abar = 1 (SD v1 ends at abar_0, set_alpha_to_one=False)":
        "最后一步走到了 abar = 1（SD v1 停在 abar_0，set_alpha_to_one=False）",
    "eps_uncond, eps_cond = eps.chunk(2) (uncond first); eps_uncond + s * (eps_cond - eps_uncond).":
        "eps_uncond, eps_cond = eps.chunk(2)（uncond 在前）；eps_uncond + s * (eps_cond - eps_uncond)。",
    "Run the doubled batch and combine the halves: uncond + scale * (cond - uncond).":
        "用加倍的批量运行模型，再组合两半：uncond + scale * (cond - uncond)。",
    "With 3 of 1000 steps the next timestep is timesteps[i + 1] (e.g. 667 -> 334), not t - 1.":
        "从 1000 步中取 3 步时，下一个时间步是 timesteps[i + 1]（例如 667 -> 334），而不是 t - 1。",
    "After the last timestep pass prev_t = -1: ddim_step then uses abar_0, as SD v1 does.":
        "最后一个时间步之后传 prev_t = -1：ddim_step 就会像 SD v1 那样使用 abar_0。",
    "the sampling loop: from noise to the final latents, with guidance and DDIM steps.":
        "采样循环：从噪声到最终的潜变量，使用引导和 DDIM 步。",
    "fn(unet, latents, context, timesteps, schedule, guidance_scale) -> latents.":
        "fn(unet, latents, context, timesteps, schedule, guidance_scale) 应返回 latents。",
    "Per step: eps = guided noise of unet(cat([x, x]), context, embedding of t); x = ddim_step(schedule, eps, t, x, prev_t).":
        "每一步：eps = unet(cat([x, x]), context, t 的嵌入) 经引导后的噪声；x = ddim_step(schedule, eps, t, x, prev_t)。",
    "Each step needs the timestep AFTER this one in the list; what comes after the last?":
        "每一步都需要列表中当前时间步的下一个；最后一个之后是什么？",
    "The model runs once per step on twice the batch: torch.cat([x, x]) with the [uncond, cond] context.":
        "模型每一步在两倍的批量上运行一次：torch.cat([x, x])，配上 [uncond, cond] 上下文。",
    'Before optimizer.step(): torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0).': '在 optimizer.step() 之前：torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)。',
    '1/sqrt(C) forgotten': '忘了 1/sqrt(C)',
    'Expected self.conv(F.pad(x, (0, 1, 0, 1))).': '应为 self.conv(F.pad(x, (0, 1, 0, 1)))。',
    'Expected vae.encode(images * 2 - 1).mean * vae.scaling_factor.': '应为 vae.encode(images * 2 - 1).mean * vae.scaling_factor。',
    '<|startoftext|> missing': '缺少 <|startoftext|>',
    'Got {}.': '实际得到 {}。',
    'Expected torch.ones(L, L, dtype=torch.bool).tril().': '应为 torch.ones(L, L, dtype=torch.bool).tril()。',
    'Expected x * torch.sigmoid(1.702 * x).': '应为 x * torch.sigmoid(1.702 * x)。',
    'Expected token_embedding(ids) + position_embedding.weight[:L].': '应为 token_embedding(ids) + position_embedding.weight[:L]。',
    "the key without the file's prefix model.diffusion_model.": '键缺少文件的前缀 model.diffusion_model.',
    'the SiLU of time_embed not counted': '没有把 time_embed 中的 SiLU 算进序号',
    'the decoders renumbered': '解码器的编号改变了',
    "Every UNet key of the original file starts with 'model.diffusion_model.'.": "原始文件中 UNet 的每个键都以 'model.diffusion_model.' 开头。",
    'time_embed = Sequential(Linear, SiLU, Linear): count the layers of the Sequential, SiLU included.': 'time_embed = Sequential(Linear, SiLU, Linear)：数 Sequential 中的层时，SiLU 也要算上。',
    "The decoders keep the notes' numbering: output_blocks.i is unet.decoders.i.": '解码器保持笔记中的编号：output_blocks.i 就是 unet.decoders.i。',
    'In the original file the UNet lives under model.diffusion_model., and its decoders are output_blocks, numbered as the notes number unet.decoders.': '在原始文件中，UNet 位于 model.diffusion_model. 之下，它的解码器是 output_blocks，编号与笔记中的 unet.decoders 相同。',
    'time_embed is a Sequential(Linear, SiLU, Linear): the SiLU has an index too.': 'time_embed 是一个 Sequential(Linear, SiLU, Linear)：SiLU 也占一个序号。',
    'answers() returns two keys of the original single file: (a) that of unet.decoders.5.2.conv.weight, (b) that of time_embedding.linear_2.weight.': 'answers() 返回原始单文件中的两个键：(a) unet.decoders.5.2.conv.weight 的键，(b) time_embedding.linear_2.weight 的键。',
    "[ok] {}: both keys are the original file's": '[ok] {}: 两个键都与原始文件一致',
    'answers() takes nothing and returns two strings.': 'answers() 不接受参数，返回两个字符串。',
    'Return two strings (key_a, key_b), got {}.': '请返回两个字符串 (key_a, key_b)，实际得到 {}。',
    "Look the key up in the file's key list above (sdcourse.weights.source_keys shows the mapping).": '在上面文件的键列表中查找这个键（sdcourse.weights.source_keys 给出对应关系）。',
    "{}: {} is not the file's key. {}": '{}: {} 不是文件中的键。{}',
}
