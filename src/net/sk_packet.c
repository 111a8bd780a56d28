/* placeholder */
#include "files/fd_ops.h"
const struct fd_ops fd_packet_ops = { .name = "packet socket", .kind = FILE_KIND__FILE_PACKET };
