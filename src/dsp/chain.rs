//! A master chain: its settings (the one type sessions, the engine and the session writer
//! share) and the [`Chain`] that runs its processors in order.

use super::*;

/// Settings of one processor of a master chain, as written in a session
/// (`Compressor(threshold_db: -20, ratio: 3)`: each variant holds that processor's own
/// settings type, written without an inner pair of parentheses).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "Processor")]
pub enum ProcessorSettings {
    /// Static gain.
    Gain(GainSettings),
    /// Cascade of RBJ biquads.
    Eq(EqSettings),
    /// Feed-forward, channel-linked, soft-knee compressor.
    Compressor(CompressorSettings),
    /// Look-ahead true-peak limiter.
    Limiter(LimiterSettings),
    /// Stereo mid/side width.
    Width(WidthSettings),
    /// TPDF dither; last in a chain.
    Dither(DitherSettings),
}

impl ProcessorSettings {
    /// The processor's name as written in a session (`"Compressor"`).
    pub fn name(&self) -> &'static str {
        match self {
            ProcessorSettings::Gain(_) => "Gain",
            ProcessorSettings::Eq(_) => "Eq",
            ProcessorSettings::Compressor(_) => "Compressor",
            ProcessorSettings::Limiter(_) => "Limiter",
            ProcessorSettings::Width(_) => "Width",
            ProcessorSettings::Dither(_) => "Dither",
        }
    }

    /// Checks the settings at `sample_rate` (the EQ's frequencies depend on it).
    pub fn validate(&self, sample_rate: u32) -> Result<(), DspError> {
        match self {
            ProcessorSettings::Gain(s) => s.validate(),
            ProcessorSettings::Eq(s) => s.validate(sample_rate),
            ProcessorSettings::Compressor(s) => s.validate(),
            ProcessorSettings::Limiter(s) => s.validate(),
            ProcessorSettings::Width(s) => s.validate(),
            ProcessorSettings::Dither(s) => s.validate(),
        }
    }

    /// Checks a whole chain: every processor, and dither only at the end. The error comes
    /// with the index of the processor concerned.
    pub fn validate_chain(
        chain: &[ProcessorSettings],
        sample_rate: u32,
    ) -> Result<(), (usize, DspError)> {
        for (i, p) in chain.iter().enumerate() {
            p.validate(sample_rate).map_err(|e| (i, e))?;
            if matches!(p, ProcessorSettings::Dither(_)) && i + 1 != chain.len() {
                return Err((
                    i,
                    DspError::Rule {
                        processor: "dither",
                        band: None,
                        problem: "Dither is not the last processor of the chain".into(),
                        allowed: "Dither only at the end of the chain (anything after it would \
                                  undo it)"
                            .into(),
                    },
                ));
            }
        }
        Ok(())
    }

    /// Builds the processor these settings describe.
    pub fn build(
        &self,
        sample_rate: u32,
        channels: usize,
        max_block_frames: usize,
    ) -> Result<Box<dyn Processor>, DspError> {
        Ok(match self {
            ProcessorSettings::Gain(s) => Box::new(Gain::new(s)?),
            ProcessorSettings::Eq(s) => {
                s.validate(sample_rate)?;
                Box::new(Eq::new(&s.bands, sample_rate, channels)?)
            }
            ProcessorSettings::Compressor(s) => {
                Box::new(Compressor::new(s, sample_rate, max_block_frames)?)
            }
            ProcessorSettings::Limiter(s) => Box::new(Limiter::new(s, sample_rate, channels)?),
            ProcessorSettings::Width(s) => Box::new(Width::new(s, channels)?),
            ProcessorSettings::Dither(s) => Box::new(Dither::new(s, channels)?),
        })
    }
}

/// An ordered list of processors (config order), run one after the other on each block.
pub struct Chain {
    processors: Vec<Box<dyn Processor>>,
    channels: usize,
}

impl Chain {
    /// Builds every processor; the first invalid setting's error is returned.
    pub fn new(
        configs: &[ProcessorSettings],
        sample_rate: u32,
        channels: usize,
        max_block_frames: usize,
    ) -> Result<Chain, DspError> {
        check_sample_rate("chain", sample_rate)?;
        check_channels("chain", channels)?;
        if max_block_frames == 0 {
            return Err(invalid("chain", "max_block_frames", 0.0, "≥ 1"));
        }
        ProcessorSettings::validate_chain(configs, sample_rate).map_err(|(_, e)| e)?;
        let processors = configs
            .iter()
            .map(|c| c.build(sample_rate, channels, max_block_frames))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Chain {
            processors,
            channels,
        })
    }

    /// Appends a processor (e.g. a [`Delay`] to align this output with another).
    pub fn push(&mut self, processor: Box<dyn Processor>) {
        self.processors.push(processor);
    }

    /// Runs every processor in order, in place.
    pub fn process(&mut self, channels: &mut [&mut [f32]]) {
        for p in self.processors.iter_mut() {
            p.process(channels);
        }
    }

    /// Sum of the processors' latencies, in frames.
    pub fn latency(&self) -> usize {
        self.processors.iter().map(|p| p.latency()).sum()
    }

    /// Resets every processor.
    pub fn reset(&mut self) {
        for p in self.processors.iter_mut() {
            p.reset();
        }
    }

    /// True when the chain has no processor (processing is the identity).
    /// Test support (the `internals` feature).
    #[cfg(feature = "internals")]
    pub fn is_empty(&self) -> bool {
        self.processors.is_empty()
    }
}

impl Processor for Chain {
    fn process(&mut self, channels: &mut [&mut [f32]]) {
        Chain::process(self, channels);
    }
    fn reset(&mut self) {
        Chain::reset(self);
    }
    fn latency(&self) -> usize {
        Chain::latency(self)
    }
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("processors", &self.processors.len())
            .field("channels", &self.channels)
            .field("latency", &self.latency())
            .finish()
    }
}
