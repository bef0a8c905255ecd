/* OpenBLAS's cblas.h, without the macro `I` that its openblas_config.h drags in from
 * <complex.h> (it would rename every parameter called I, the ops' input width). */
#ifndef SIMCSE_CPU_BLAS_H
#define SIMCSE_CPU_BLAS_H

#include <cblas.h>
#undef I

#endif
