# dj_llhttp.cmake - llhttp, the HTTP/1.1 parser of the Backend Interfaces' listener (bi/srv_http.c).
# Debian 12 ships no libllhttp, only its C sources in node-llhttp (config/install-deps): they are
# built here into a static library from where Debian installed them, never copied into the tree.
# Strict mode (LLHTTP_STRICT_MODE): no bytes over 0x7e in the target, no bare CR or LF.
find_path(DJ_LLHTTP_INCLUDE llhttp.h PATHS /usr/share/include/llhttp /usr/include/llhttp
	NO_DEFAULT_PATH)
foreach(f api.c http.c llhttp.c)
	string(REPLACE ".c" "" v ${f})
	find_file(DJ_LLHTTP_${v} ${f} PATHS /usr/share/llhttp NO_DEFAULT_PATH)
	if(NOT DJ_LLHTTP_${v})
		set(DJ_LLHTTP_INCLUDE DJ_LLHTTP_INCLUDE-NOTFOUND)
	endif()
endforeach()
if(NOT DJ_LLHTTP_INCLUDE)
	message(FATAL_ERROR "llhttp's sources (/usr/share/llhttp/{api,http,llhttp}.c and "
		"/usr/share/include/llhttp/llhttp.h) not found: install Debian's node-llhttp "
		"(config/install-deps)")
endif()
add_library(dj_llhttp STATIC ${DJ_LLHTTP_api} ${DJ_LLHTTP_http} ${DJ_LLHTTP_llhttp})
target_include_directories(dj_llhttp SYSTEM PUBLIC ${DJ_LLHTTP_INCLUDE})
target_compile_definitions(dj_llhttp PUBLIC LLHTTP_STRICT_MODE=1)
# generated code: our warnings (-Werror, -Wmissing-prototypes, ...) are not its style
target_compile_options(dj_llhttp PRIVATE -w)
set_target_properties(dj_llhttp PROPERTIES POSITION_INDEPENDENT_CODE ON)
