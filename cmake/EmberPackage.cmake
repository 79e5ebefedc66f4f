# Install rules, the CMake package (find_package(Ember)), pkg-config files and the .deb, all
# derived from the module targets' link graph, and the same graph written for
# scripts/check_layering.sh. Included by the top-level CMakeLists.txt after every module.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(EMBER_MODULES)
foreach(module base core formats hub nn models tokenizers ml pipelines generation)
  if(TARGET ember_${module})
    list(APPEND EMBER_MODULES ${module})
  endif()
endforeach()

# Direct links of a module target, split into Ember modules and everything else; generator
# expressions that only wrap build-time helpers ($<BUILD_INTERFACE:ember_warnings>) drop out.
function(ember_module_links module out_modules out_external)
  get_target_property(links ember_${module} LINK_LIBRARIES)
  set(mods)
  set(ext)
  foreach(link IN LISTS links)
    if(link MATCHES "^ember_(.+)$" AND TARGET ${link})
      list(APPEND mods ${CMAKE_MATCH_1})
    elseif(NOT link MATCHES "^\\$<")
      list(APPEND ext ${link})
    endif()
  endforeach()
  set(${out_modules} ${mods} PARENT_SCOPE)
  set(${out_external} ${ext} PARENT_SCOPE)
endfunction()

# --- the layering table: every module with everything it may include (itself and what it links,
# transitively). scripts/check_layering.sh reads it.
set(layering "# module: modules whose headers it may include (from the CMake link graph)\n")
foreach(module IN LISTS EMBER_MODULES)
  set(reach ${module})
  set(todo ${module})
  while(todo)
    list(POP_FRONT todo current)
    ember_module_links(${current} deps ext)
    foreach(dep IN LISTS deps)
      if(NOT dep IN_LIST reach)
        list(APPEND reach ${dep})
        list(APPEND todo ${dep})
      endif()
    endforeach()
  endwhile()
  list(SORT reach)
  list(JOIN reach " " reach)
  string(APPEND layering "${module}: ${reach}\n")
endforeach()
file(WRITE ${CMAKE_BINARY_DIR}/ember_layering.txt "${layering}")

# --- libraries, headers, CLI, CMake package
foreach(module IN LISTS EMBER_MODULES)
  set_target_properties(ember_${module} PROPERTIES EXPORT_NAME ${module})
  target_include_directories(ember_${module}
                             INTERFACE $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
endforeach()
# Ember::ember: every module at once.
add_library(ember_all INTERFACE)
set_target_properties(ember_all PROPERTIES EXPORT_NAME ember)
list(TRANSFORM EMBER_MODULES PREPEND ember_ OUTPUT_VARIABLE ember_module_targets)
target_link_libraries(ember_all INTERFACE ${ember_module_targets})

set(EMBER_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/Ember)
install(TARGETS ${ember_module_targets} ember_all EXPORT EmberTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        OBJECTS DESTINATION ${CMAKE_INSTALL_LIBDIR}/ember-objects)
install(TARGETS ember RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/ember DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT EmberTargets NAMESPACE Ember:: DESTINATION ${EMBER_CMAKE_DIR})
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/EmberConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/EmberConfig.cmake
                              INSTALL_DESTINATION ${EMBER_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/EmberConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/EmberConfig.cmake ${CMAKE_BINARY_DIR}/EmberConfigVersion.cmake
        DESTINATION ${EMBER_CMAKE_DIR})

# --- pkg-config: one file per module (ember-<module>.pc), so that a program using only the
# tokenizers does not link OpenBLAS or libcurl, plus ember.pc for everything. The libraries are
# static, so their own dependencies go in Requires (not Requires.private): a plain
# `pkg-config --libs` then links everything. ember_ml is an OBJECT library in the build (its
# algorithms register themselves from static constructors); installed it is also an archive
# that pkg-config users link whole.
add_library(ember_ml_archive STATIC $<TARGET_OBJECTS:ember_ml>)
set_target_properties(ember_ml_archive PROPERTIES OUTPUT_NAME ember_ml)
install(TARGETS ember_ml_archive ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
# pkg-config names of the external targets the modules link.
set(pc_of_Threads::Threads "")
set(pc_of_hwy::hwy libhwy)
set(pc_of_BLAS::BLAS openblas)
set(pc_of_LAPACK::LAPACK lapack)
set(pc_of_nlohmann_json::nlohmann_json nlohmann_json)
set(pc_of_PkgConfig::PCRE2 libpcre2-8)
set(pc_of_PkgConfig::UTF8PROC libutf8proc)
set(pc_of_CURL::libcurl libcurl)
set(pc_of_OpenSSL::Crypto libcrypto)
# The .pc files find their prefix from where they lie, so that the tree can be moved.
file(RELATIVE_PATH pc_to_prefix /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
foreach(module IN LISTS EMBER_MODULES)
  ember_module_links(${module} deps ext)
  set(requires)
  foreach(dep IN LISTS deps)
    list(APPEND requires ember-${dep})
  endforeach()
  foreach(target IN LISTS ext)
    if(NOT DEFINED pc_of_${target})
      message(FATAL_ERROR "cmake/EmberPackage.cmake: no pkg-config name for ${target}, "
                          "which ember_${module} links")
    endif()
    list(APPEND requires ${pc_of_${target}})
  endforeach()
  list(REMOVE_DUPLICATES requires)
  list(JOIN requires ", " requires)
  set(libs "-lember_${module}")
  if(module STREQUAL "ml")
    set(libs "-Wl,--whole-archive -lember_ml -Wl,--no-whole-archive")
  elseif(module STREQUAL "base")
    string(APPEND libs " -pthread")
  endif()
  file(WRITE ${CMAKE_BINARY_DIR}/pkgconfig/ember-${module}.pc
"prefix=\${pcfiledir}/${pc_to_prefix}
includedir=\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}
libdir=\${prefix}/${CMAKE_INSTALL_LIBDIR}

Name: ember-${module}
Description: Ember ${module} module (static library)
Version: ${PROJECT_VERSION}
Requires: ${requires}
Cflags: -I\${includedir} -std=c++20
Libs: -L\${libdir} ${libs}
")
endforeach()
list(TRANSFORM EMBER_MODULES PREPEND ember- OUTPUT_VARIABLE all_pcs)
list(JOIN all_pcs ", " all_pcs)
file(WRITE ${CMAKE_BINARY_DIR}/pkgconfig/ember.pc
"Name: ember
Description: Ember ML toolkit: every module
Version: ${PROJECT_VERSION}
Requires: ${all_pcs}
")
install(DIRECTORY ${CMAKE_BINARY_DIR}/pkgconfig DESTINATION ${CMAKE_INSTALL_LIBDIR})

# --- .deb (cpack -G DEB in the build folder): headers, static libraries, CMake and pkg-config
# files and the CLI. The Depends are the -dev packages the installed configs ask for (they carry
# the shared libraries the CLI needs too).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME libember-dev)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "Ember maintainers")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Ember C++20 ML toolkit: static libraries, headers and the ember CLI")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
string(CONCAT CPACK_DEBIAN_PACKAGE_DEPENDS
    "libopenblas-dev, liblapack-dev, libhwy-dev, nlohmann-json3-dev, libpcre2-dev, "
    "libutf8proc-dev, libcurl4-openssl-dev, libssl-dev, pkg-config")
include(CPack)
