//! Statement splitting (placeholder until the splitter lands).
