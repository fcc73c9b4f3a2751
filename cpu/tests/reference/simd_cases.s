// copy
dup v0.16b, v1.b[5]
dup v0.8b, v1.b[15]
dup v0.8h, v1.h[7]
dup v0.4h, v1.h[2]
dup v0.4s, v1.s[3]
dup v0.2s, v1.s[1]
dup v0.2d, v1.d[1]
dup v0.16b, w1
dup v0.8b, w1
dup v0.4h, w1
dup v0.8h, w1
dup v0.2s, w1
dup v0.4s, w1
dup v0.2d, x1
dup v0.16b, wzr
mov v0.b[3], w1
mov v0.h[7], w1
mov v0.s[2], w1
mov v0.d[1], x1
mov v0.d[0], xzr
mov v0.b[15], v1.b[3]
mov v0.h[2], v1.h[7]
mov v0.s[0], v1.s[3]
mov v0.d[1], v1.d[0]
smov w0, v1.b[9]
smov w0, v1.h[3]
smov x0, v1.b[15]
smov x0, v1.h[5]
smov x0, v1.s[3]
umov w0, v1.b[9]
umov w0, v1.h[7]
mov w0, v1.s[3]
mov x0, v1.d[1]
mov b0, v1.b[7]
mov h0, v1.h[5]
mov s0, v1.s[2]
mov d0, v1.d[1]
// modified immediate
movi v0.16b, #0xa5
movi v0.8b, #0x3c
movi v0.4h, #0x7f
movi v0.8h, #0x7f, lsl #8
movi v0.2s, #0xfe, lsl #24
movi v0.4s, #0x12, lsl #16
movi v0.4s, #0x12, msl #8
movi v0.2s, #0x12, msl #16
movi d0, #0xff00ff0000ffff00
movi v0.2d, #0x00ff00ff00ff00ff
mvni v0.4h, #0x7f
mvni v0.8h, #0x7f, lsl #8
mvni v0.2s, #0xfe, lsl #24
mvni v0.4s, #0x12, msl #16
orr v0.4h, #0x7f
orr v0.8h, #0x7f, lsl #8
orr v0.2s, #0xfe, lsl #24
orr v0.4s, #0x12, lsl #8
bic v0.4h, #0x7f
bic v0.8h, #0x7f, lsl #8
bic v0.2s, #0xfe, lsl #16
bic v0.4s, #0x12
// permute
uzp1 v0.16b, v1.16b, v2.16b
uzp1 v0.8b, v1.8b, v2.8b
uzp2 v0.8h, v1.8h, v2.8h
uzp2 v0.4h, v1.4h, v2.4h
uzp1 v0.2d, v1.2d, v2.2d
uzp2 v0.2s, v1.2s, v2.2s
trn1 v0.16b, v1.16b, v2.16b
trn2 v0.8b, v1.8b, v2.8b
trn1 v0.4s, v1.4s, v2.4s
trn2 v0.2d, v1.2d, v2.2d
trn2 v0.4h, v1.4h, v2.4h
zip1 v0.16b, v1.16b, v2.16b
zip2 v0.16b, v1.16b, v2.16b
zip1 v0.8b, v1.8b, v2.8b
zip2 v0.8b, v1.8b, v2.8b
zip1 v0.4s, v1.4s, v2.4s
zip2 v0.2s, v1.2s, v2.2s
zip2 v0.2d, v1.2d, v2.2d
zip1 v0.8h, v0.8h, v0.8h
ext v0.16b, v1.16b, v2.16b, #3
ext v0.16b, v1.16b, v2.16b, #15
ext v0.8b, v1.8b, v2.8b, #7
ext v0.8b, v1.8b, v2.8b, #0
ext v1.16b, v1.16b, v1.16b, #8
// table lookup
tbl v0.16b, {v1.16b}, v2.16b
tbl v0.8b, {v1.16b}, v2.8b
tbl v0.16b, {v1.16b, v2.16b}, v5.16b
tbl v0.16b, {v1.16b, v2.16b, v3.16b}, v5.16b
tbl v0.16b, {v1.16b, v2.16b, v3.16b, v4.16b}, v5.16b
tbl v0.8b, {v1.16b, v2.16b, v3.16b, v4.16b}, v5.8b
tbx v0.16b, {v1.16b}, v2.16b
tbx v0.8b, {v1.16b, v2.16b}, v5.8b
tbx v0.16b, {v1.16b, v2.16b, v3.16b, v4.16b}, v5.16b
tbl v5.16b, {v5.16b, v6.16b}, v5.16b
// reserved: DUP element imm5=x0000, DUP 2d from Q=0, UMOV x from b, SMOV w from s
.inst 0x4e100420
.inst 0x0e080420
.inst 0x4e013c20
.inst 0x0e042c20
// reserved: uzp1 1d, ext 8b #8
.inst 0x0ec21820
.inst 0x2e024020
// three same
shadd v0.16b, v1.16b, v2.16b
uhadd v0.8h, v1.8h, v2.8h
shadd v0.2s, v1.2s, v2.2s
sqadd v0.16b, v1.16b, v2.16b
sqadd v0.4h, v1.4h, v2.4h
sqadd v0.4s, v1.4s, v2.4s
sqadd v0.2d, v1.2d, v2.2d
uqadd v0.8b, v1.8b, v2.8b
uqadd v0.8h, v1.8h, v2.8h
uqadd v0.2d, v1.2d, v2.2d
srhadd v0.8b, v1.8b, v2.8b
urhadd v0.4s, v1.4s, v2.4s
and v0.16b, v1.16b, v2.16b
bic v0.8b, v1.8b, v2.8b
orr v0.16b, v1.16b, v2.16b
orn v0.16b, v1.16b, v2.16b
eor v0.8b, v1.8b, v2.8b
bsl v0.16b, v1.16b, v2.16b
bit v0.16b, v1.16b, v2.16b
bif v0.8b, v1.8b, v2.8b
shsub v0.8h, v1.8h, v2.8h
uhsub v0.16b, v1.16b, v2.16b
sqsub v0.8h, v1.8h, v2.8h
sqsub v0.2d, v1.2d, v2.2d
uqsub v0.16b, v1.16b, v2.16b
uqsub v0.2s, v1.2s, v2.2s
cmgt v0.16b, v1.16b, v2.16b
cmhi v0.4h, v1.4h, v2.4h
cmge v0.4s, v1.4s, v2.4s
cmhs v0.2d, v1.2d, v2.2d
cmgt v0.2d, v1.2d, v2.2d
sshl v0.16b, v1.16b, v2.16b
sshl v0.4s, v1.4s, v2.4s
sshl v0.2d, v1.2d, v2.2d
ushl v0.8h, v1.8h, v2.8h
ushl v0.2d, v1.2d, v2.2d
sqshl v0.8b, v1.8b, v2.8b
sqshl v0.2d, v1.2d, v2.2d
uqshl v0.4s, v1.4s, v2.4s
uqshl v0.2d, v1.2d, v2.2d
srshl v0.8h, v1.8h, v2.8h
srshl v0.2d, v1.2d, v2.2d
urshl v0.16b, v1.16b, v2.16b
urshl v0.2d, v1.2d, v2.2d
sqrshl v0.4s, v1.4s, v2.4s
sqrshl v0.2d, v1.2d, v2.2d
uqrshl v0.8h, v1.8h, v2.8h
uqrshl v0.2d, v1.2d, v2.2d
smax v0.16b, v1.16b, v2.16b
umax v0.4s, v1.4s, v2.4s
smin v0.8h, v1.8h, v2.8h
umin v0.8b, v1.8b, v2.8b
sabd v0.16b, v1.16b, v2.16b
uabd v0.4s, v1.4s, v2.4s
saba v0.8h, v1.8h, v2.8h
uaba v0.8b, v1.8b, v2.8b
add v0.16b, v1.16b, v2.16b
add v0.2d, v1.2d, v2.2d
sub v0.4h, v1.4h, v2.4h
sub v0.4s, v1.4s, v2.4s
cmtst v0.16b, v1.16b, v2.16b
cmtst v0.2d, v1.2d, v2.2d
cmeq v0.8h, v1.8h, v1.8h
cmeq v0.4s, v1.4s, v2.4s
mla v0.16b, v1.16b, v2.16b
mla v0.4s, v1.4s, v2.4s
mls v0.8h, v1.8h, v2.8h
mul v0.4h, v1.4h, v2.4h
mul v0.4s, v1.4s, v2.4s
pmul v0.16b, v1.16b, v2.16b
pmul v0.8b, v1.8b, v2.8b
smaxp v0.16b, v1.16b, v2.16b
umaxp v0.4h, v1.4h, v2.4h
sminp v0.4s, v1.4s, v2.4s
uminp v0.2s, v1.2s, v2.2s
sqdmulh v0.8h, v1.8h, v2.8h
sqdmulh v0.2s, v1.2s, v2.2s
sqrdmulh v0.4h, v1.4h, v2.4h
sqrdmulh v0.4s, v1.4s, v2.4s
addp v0.16b, v1.16b, v2.16b
addp v0.8h, v1.8h, v2.8h
addp v0.2s, v1.2s, v2.2s
addp v0.2d, v1.2d, v2.2d
addp v1.4s, v1.4s, v1.4s
// scalar three same
sqadd b0, b1, b2
sqadd h0, h1, h2
sqadd s0, s1, s2
sqadd d0, d1, d2
uqadd b0, b1, b2
uqsub d0, d1, d2
sqsub s0, s1, s2
cmgt d0, d1, d2
cmhi d0, d1, d2
cmge d0, d1, d2
cmhs d0, d1, d2
sshl d0, d1, d2
ushl d0, d1, d2
sqshl b0, b1, b2
sqshl s0, s1, s2
uqshl h0, h1, h2
srshl d0, d1, d2
urshl d0, d1, d2
sqrshl d0, d1, d2
uqrshl b0, b1, b2
add d0, d1, d2
sub d0, d1, d2
cmtst d0, d1, d2
cmeq d0, d1, d2
sqdmulh h0, h1, h2
sqrdmulh s0, s1, s2
// reserved three same: add 1d, mul 2d, sqdmulh 16b, pmul 8h, add scalar s, sqdmulh scalar b
.inst 0x0ee28420
.inst 0x4ee29c20
.inst 0x4e22b420
.inst 0x6e629c20
.inst 0x5ea28420
.inst 0x5e22b420
// two-register misc
rev64 v0.16b, v1.16b
rev64 v0.4h, v1.4h
rev64 v0.4s, v1.4s
rev32 v0.16b, v1.16b
rev32 v0.8h, v1.8h
rev16 v0.16b, v1.16b
rev16 v0.8b, v1.8b
saddlp v0.8h, v1.16b
saddlp v0.2s, v1.4h
uaddlp v0.2d, v1.4s
uaddlp v0.1d, v1.2s
suqadd v0.16b, v1.16b
suqadd v0.2d, v1.2d
usqadd v0.4s, v1.4s
usqadd v0.8b, v1.8b
cls v0.16b, v1.16b
cls v0.4s, v1.4s
clz v0.8h, v1.8h
clz v0.2s, v1.2s
cnt v0.16b, v1.16b
cnt v0.8b, v1.8b
not v0.16b, v1.16b
mvn v0.8b, v1.8b
rbit v0.16b, v1.16b
rbit v0.8b, v1.8b
sadalp v0.4s, v1.8h
uadalp v0.8h, v1.16b
uadalp v0.1d, v1.2s
sqabs v0.16b, v1.16b
sqabs v0.2d, v1.2d
sqneg v0.4h, v1.4h
sqneg v0.4s, v1.4s
cmgt v0.16b, v1.16b, #0
cmge v0.8h, v1.8h, #0
cmeq v0.4s, v1.4s, #0
cmle v0.2d, v1.2d, #0
cmlt v0.8b, v1.8b, #0
abs v0.16b, v1.16b
abs v0.2d, v1.2d
neg v0.4s, v1.4s
neg v0.2d, v1.2d
xtn v0.8b, v1.8h
xtn2 v0.16b, v1.8h
xtn v0.2s, v1.2d
sqxtn v0.4h, v1.4s
sqxtn2 v0.4s, v1.2d
uqxtn v0.8b, v1.8h
uqxtn2 v0.8h, v1.4s
sqxtun v0.2s, v1.2d
sqxtun2 v0.16b, v1.8h
shll v0.8h, v1.8b, #8
shll2 v0.4s, v1.8h, #16
shll v0.2d, v1.2s, #32
urecpe v0.4s, v1.4s
urecpe v0.2s, v1.2s
ursqrte v0.4s, v1.4s
ursqrte v0.2s, v1.2s
// scalar two-register misc
suqadd b0, b1
usqadd d0, d1
sqabs h0, h1
sqneg s0, s1
sqabs d0, d1
cmgt d0, d1, #0
cmge d0, d1, #0
cmeq d0, d1, #0
cmle d0, d1, #0
cmlt d0, d1, #0
abs d0, d1
neg d0, d1
sqxtn b0, h1
sqxtn s0, d1
uqxtn h0, s1
sqxtun b0, h1
sqxtun s0, d1
// across lanes
addv b0, v1.16b
addv b0, v1.8b
addv h0, v1.8h
addv s0, v1.4s
saddlv h0, v1.16b
saddlv s0, v1.4h
uaddlv d0, v1.4s
uaddlv h0, v1.8b
smaxv b0, v1.16b
smaxv h0, v1.4h
umaxv s0, v1.4s
sminv b0, v1.8b
uminv h0, v1.8h
uminv b0, v1.16b
addp d0, v1.2d
// shift by immediate
sshr v0.16b, v1.16b, #3
sshr v0.8b, v1.8b, #8
sshr v0.4h, v1.4h, #16
sshr v0.4s, v1.4s, #1
sshr v0.2d, v1.2d, #64
ushr v0.8h, v1.8h, #5
ushr v0.2d, v1.2d, #64
ushr v0.2s, v1.2s, #32
ssra v0.16b, v1.16b, #7
usra v0.2d, v1.2d, #33
srshr v0.8h, v1.8h, #16
srshr v0.2d, v1.2d, #64
urshr v0.4s, v1.4s, #1
urshr v0.2d, v1.2d, #63
srsra v0.8b, v1.8b, #2
ursra v0.4s, v1.4s, #32
sri v0.16b, v1.16b, #3
sri v0.4s, v1.4s, #32
sri v0.2d, v1.2d, #64
sri v0.2d, v1.2d, #1
shl v0.16b, v1.16b, #7
shl v0.4h, v1.4h, #0
shl v0.2d, v1.2d, #63
sli v0.8h, v1.8h, #9
sli v0.2d, v1.2d, #0
sli v0.2s, v1.2s, #31
sqshlu v0.16b, v1.16b, #3
sqshlu v0.2d, v1.2d, #60
sqshl v0.8h, v1.8h, #5
sqshl v0.4s, v1.4s, #31
uqshl v0.8b, v1.8b, #7
uqshl v0.2d, v1.2d, #1
shrn v0.8b, v1.8h, #3
shrn2 v0.16b, v1.8h, #8
shrn v0.2s, v1.2d, #32
rshrn v0.4h, v1.4s, #16
rshrn2 v0.4s, v1.2d, #1
sqshrn v0.8b, v1.8h, #1
sqshrn2 v0.8h, v1.4s, #16
uqshrn v0.2s, v1.2d, #7
uqshrn2 v0.16b, v1.8h, #2
sqrshrn v0.4h, v1.4s, #3
uqrshrn v0.8b, v1.8h, #8
sqshrun v0.8b, v1.8h, #4
sqshrun2 v0.4s, v1.2d, #31
sqrshrun v0.4h, v1.4s, #1
sqrshrun2 v0.16b, v1.8h, #8
sshll v0.8h, v1.8b, #0
sxtl v0.4s, v1.4h
sshll2 v0.2d, v1.4s, #31
ushll v0.8h, v1.8b, #7
uxtl2 v0.8h, v1.16b
uxtl v0.2d, v1.2s
// scalar shift by immediate
sshr d0, d1, #64
sshr d0, d1, #3
ushr d0, d1, #64
ushr d0, d1, #1
ssra d0, d1, #17
usra d0, d1, #64
srshr d0, d1, #64
urshr d0, d1, #5
srsra d0, d1, #63
ursra d0, d1, #64
sri d0, d1, #64
sri d0, d1, #9
shl d0, d1, #63
sli d0, d1, #12
sqshlu b0, b1, #3
sqshlu d0, d1, #2
sqshl h0, h1, #15
sqshl d0, d1, #1
uqshl s0, s1, #31
uqshl b0, b1, #0
sqshrn b0, h1, #3
sqshrn s0, d1, #32
uqshrn h0, s1, #1
sqrshrn b0, h1, #8
uqrshrn s0, d1, #5
sqshrun h0, s1, #16
sqrshrun b0, h1, #1
// three different
saddl v0.8h, v1.8b, v2.8b
saddl2 v0.4s, v1.8h, v2.8h
uaddl v0.2d, v1.2s, v2.2s
uaddl2 v0.8h, v1.16b, v2.16b
saddw v0.8h, v1.8h, v2.8b
uaddw2 v0.2d, v1.2d, v2.4s
ssubl v0.4s, v1.4h, v2.4h
usubl2 v0.8h, v1.16b, v2.16b
ssubw2 v0.4s, v1.4s, v2.8h
usubw v0.2d, v1.2d, v2.2s
addhn v0.8b, v1.8h, v2.8h
addhn2 v0.4s, v1.2d, v2.2d
raddhn v0.4h, v1.4s, v2.4s
raddhn2 v0.16b, v1.8h, v2.8h
subhn v0.2s, v1.2d, v2.2d
rsubhn2 v0.8h, v1.4s, v2.4s
sabal v0.8h, v1.8b, v2.8b
uabal2 v0.4s, v1.8h, v2.8h
sabdl2 v0.2d, v1.4s, v2.4s
uabdl v0.8h, v1.8b, v2.8b
smlal v0.4s, v1.4h, v2.4h
umlal2 v0.2d, v1.4s, v2.4s
smlsl2 v0.8h, v1.16b, v2.16b
umlsl v0.4s, v1.4h, v2.4h
smull v0.8h, v1.8b, v2.8b
smull2 v0.2d, v1.4s, v2.4s
umull v0.4s, v1.4h, v2.4h
umull2 v0.8h, v1.16b, v2.16b
sqdmlal v0.4s, v1.4h, v2.4h
sqdmlal2 v0.2d, v1.4s, v2.4s
sqdmlsl v0.2d, v1.2s, v2.2s
sqdmlsl2 v0.4s, v1.8h, v2.8h
sqdmull v0.4s, v1.4h, v2.4h
sqdmull2 v0.2d, v1.4s, v2.4s
pmull v0.8h, v1.8b, v2.8b
pmull2 v0.8h, v1.16b, v2.16b
sqdmlal s0, h1, h2
sqdmlsl d0, s1, s2
sqdmull s0, h1, h2
sqdmull d0, s1, s2
// by element
mla v0.8h, v1.8h, v2.h[7]
mla v0.2s, v1.2s, v2.s[1]
mls v0.4h, v1.4h, v15.h[3]
mls v0.4s, v1.4s, v2.s[2]
mul v0.8h, v1.8h, v2.h[5]
mul v0.4s, v1.4s, v3.s[3]
sqdmulh v0.4h, v1.4h, v2.h[1]
sqdmulh v0.4s, v1.4s, v2.s[0]
sqrdmulh v0.8h, v1.8h, v2.h[6]
sqrdmulh v0.2s, v1.2s, v2.s[3]
smlal v0.4s, v1.4h, v2.h[2]
umlal2 v0.2d, v1.4s, v2.s[1]
smlsl2 v0.4s, v1.8h, v2.h[7]
umlsl v0.2d, v1.2s, v2.s[3]
smull v0.4s, v1.4h, v2.h[0]
umull2 v0.2d, v1.4s, v2.s[2]
sqdmlal v0.4s, v1.4h, v2.h[4]
sqdmlsl2 v0.2d, v1.4s, v2.s[1]
sqdmull v0.2d, v1.2s, v2.s[3]
sqdmull2 v0.4s, v1.8h, v2.h[7]
sqdmlal s0, h1, v2.h[3]
sqdmlsl d0, s1, v2.s[2]
sqdmull s0, h1, v2.h[5]
sqdmulh h0, h1, v2.h[7]
sqrdmulh s0, s1, v2.s[1]
// reserved: rev16 8h, sshr immh=1xxx Q=0, shrn immh=1xxx, addv 2s, cnt 8h, saddl size 11
.inst 0x4e601820
.inst 0x0f410420
.inst 0x0f418420
.inst 0x0eb1b820
.inst 0x4e605820
.inst 0x0ee20020
