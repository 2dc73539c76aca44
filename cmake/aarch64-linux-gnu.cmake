# Cross build for ARM64 Linux with Debian's g++-aarch64-linux-gnu; tests run under qemu-user
# (make test-arm). Needs: dpkg --add-architecture arm64; apt-get install g++-aarch64-linux-gnu
# qemu-user libpcre2-dev:arm64 (scripts/setup.sh, setup_arm). `-cpu max` emulates every ARMv8/v9
# extension qemu knows (dotprod, i8mm, fp16), so each kernel path runs; the environment switches
# G2C_ARM_DOTPROD=0 / G2C_ARM_I8MM=0 select the others.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# /usr/aarch64-linux-gnu holds the target's libc and libstdc++ (the -L root of qemu's dynamic loader);
# Debian's multiarch headers and libraries (/usr/include, /usr/lib/aarch64-linux-gnu) are searched too.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
# pkg-config reads the arm64 .pc files (libpcre2-dev:arm64), not the host's.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu)
# Static executables: a dynamically linked aarch64 program that starts a thread hangs inside
# pthread_create under Debian 12's qemu-aarch64 7.2 with -L (seen here; a static one runs).
set(CMAKE_EXE_LINKER_FLAGS_INIT -static)
