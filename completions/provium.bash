# bash completion for provium. Installed by `make install` as
# $(PREFIX)/share/bash-completion/completions/provium. Every flag of
# `provium --help` and of `provium help SUBCOMMAND` must be listed here:
# tests/cli/t_man_completion.sh checks it (and completes each one).

_provium_profiles()
{
	# `default` (built in) and every [profiles.NAME] of ./provium.toml
	local cfg=provium.toml i
	for ((i = 1; i < ${#COMP_WORDS[@]}; i++)); do
		[[ ${COMP_WORDS[i]} == --config && $((i + 1)) -lt ${#COMP_WORDS[@]} ]] &&
			cfg=${COMP_WORDS[i + 1]}
	done
	echo default
	[[ -r $cfg ]] && sed -n 's/^[[:space:]]*\[profiles\.\([A-Za-z0-9_-]*\)\][[:space:]]*$/\1/p' "$cfg"
}

_provium()
{
	local cur prev sub= i
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_CWORD:+${COMP_WORDS[COMP_CWORD - 1]}}
	local subs="list lsp-setup fixture repl help"
	local run_flags="--config --filter -k --test --include-slow --tag --no-tag --tag-meta
		--no-tag-meta --rerun-failed --since --watch --shard --allow-empty
		--vmm --accel --mem --cpus --cpu-overcommit --no-preflight --no-ksm
		--timeout --fail-fast -v --verbose -q --quiet --json --durations
		--no-capture --color
		--junit --save-events --events-stdout --events-socket --coverage
		-h --help -V --version"

	# the subcommand: the first word that is not a flag or a flag's value
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--config | --filter | -k | --test | --color | --tag | --no-tag | --tag-meta | --no-tag-meta | \
			--since | --shard | --vmm | --accel | --mem | --cpus | \
			--cpu-overcommit | --timeout | --durations | --junit | \
			--save-events | --events-socket)
			((i++)) ;;
		-*) ;;
		*)
			[[ " $subs " == *" ${COMP_WORDS[i]} "* ]] && sub=${COMP_WORDS[i]}
			break ;;
		esac
	done

	case $prev in
	--vmm)
		COMPREPLY=($(compgen -W "qemu local" -- "$cur")); return ;;
	--accel)
		COMPREPLY=($(compgen -W "auto kvm tcg" -- "$cur")); return ;;
	--color)
		COMPREPLY=($(compgen -W "auto always never" -- "$cur")); return ;;
	--config | --junit | --save-events | --events-socket | --since)
		COMPREPLY=($(compgen -f -- "$cur")); return ;;
	--fixture)
		COMPREPLY=($(compgen -f -- "$cur")); return ;;
	--filter | -k | --test | --tag | --no-tag | --tag-meta | --no-tag-meta | --shard | \
		--mem | --cpus | --cpu-overcommit | --timeout | --durations | --name)
		return ;;
	esac

	case $sub in
	"")
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "$run_flags" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$subs" -- "$cur") $(compgen -f -- "$cur"))
		fi ;;
	list)
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--tests --fixtures $run_flags" -- "$cur"))
		else
			COMPREPLY=($(compgen -f -- "$cur"))
		fi ;;
	lsp-setup)
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--force -h --help" -- "$cur"))
		else
			COMPREPLY=($(compgen -d -- "$cur"))
		fi ;;
	fixture)
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--config --vmm -h --help" -- "$cur"))
		elif [[ $prev == build || $prev == rebuild ]]; then
			COMPREPLY=($(compgen -f -- "$cur"))
		else
			COMPREPLY=($(compgen -W "list build rebuild clean stale" -- "$cur"))
		fi ;;
	repl)
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--name --fixture --vmm --config --no-preflight
				-h --help" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$(_provium_profiles)" -- "$cur"))
		fi ;;
	help)
		COMPREPLY=($(compgen -W "$subs" -- "$cur")) ;;
	esac
}
complete -o filenames -F _provium provium
