# DkvConfig.cmake: the CMake package config of libdkv, installed by
# `make install-lib PREFIX=<prefix>` as <prefix>/lib/cmake/Dkv/. A project
# then finds the library with
#
#   find_package(Dkv CONFIG REQUIRED)   # -DCMAKE_PREFIX_PATH=<prefix>
#   target_link_libraries(app PRIVATE Dkv::dkv)          # C, or C++ with dkv.hpp
#   target_link_libraries(app PRIVATE Dkv::dkv_static)   # libdkv.a instead
#
# Both targets carry the include directory holding dkv.h and dkv.hpp.
# It is relocatable: every path is found from this file's own location.

get_filename_component(_dkv_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)

find_path(Dkv_INCLUDE_DIR dkv.h PATHS "${_dkv_prefix}/include" NO_DEFAULT_PATH)
find_library(Dkv_LIBRARY NAMES dkv PATHS "${_dkv_prefix}/lib" NO_DEFAULT_PATH)
find_file(Dkv_STATIC_LIBRARY libdkv.a PATHS "${_dkv_prefix}/lib" NO_DEFAULT_PATH)

if(NOT Dkv_INCLUDE_DIR OR NOT Dkv_LIBRARY)
  set(Dkv_FOUND FALSE)
  set(Dkv_NOT_FOUND_MESSAGE "dkv.h or libdkv not found under ${_dkv_prefix}")
  return()
endif()

if(NOT TARGET Dkv::dkv)
  add_library(Dkv::dkv SHARED IMPORTED)
  set_target_properties(Dkv::dkv PROPERTIES
    IMPORTED_LOCATION "${Dkv_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${Dkv_INCLUDE_DIR}")
endif()

if(Dkv_STATIC_LIBRARY AND NOT TARGET Dkv::dkv_static)
  find_package(Threads REQUIRED)
  add_library(Dkv::dkv_static STATIC IMPORTED)
  set_target_properties(Dkv::dkv_static PROPERTIES
    IMPORTED_LOCATION "${Dkv_STATIC_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${Dkv_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;${CMAKE_DL_LIBS};m")
endif()

set(Dkv_INCLUDE_DIRS "${Dkv_INCLUDE_DIR}")
set(Dkv_LIBRARIES Dkv::dkv)
set(Dkv_FOUND TRUE)
