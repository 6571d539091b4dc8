#include <cblas.h>
/* OpenBLAS threading controls (declared in openblas_config.h / cblas.h of OpenBLAS). */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char* openblas_get_config(void);
char* openblas_get_corename(void);
