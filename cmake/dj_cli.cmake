# dj_cli_program(<name> SOURCES <file>... LIBS <lib>...): one of the installed CLIs. Its sources
# live in <name>/ of the calling folder (and include each other from there); it links <lib>s and
# the CLI helpers (dj_cli, dj_common), and installs into bin/.
function(dj_cli_program name)
	cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "SOURCES;LIBS")
	list(TRANSFORM arg_SOURCES PREPEND ${name}/)
	add_executable(${name} ${arg_SOURCES})
	target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/${name})
	target_link_libraries(${name} PRIVATE ${arg_LIBS} dj_cli dj_common)
	install(TARGETS ${name} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endfunction()
